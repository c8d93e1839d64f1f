export { cacheKey, canonicalJson, hashBytes, hashDataset, type CacheKeyParts } from './key.js';
export { cachePath, loadEntry, storeEntry, removeEntry, type CacheLoad } from './store.js';
