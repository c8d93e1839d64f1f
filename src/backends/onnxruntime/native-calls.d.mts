import type { ExitGuardData } from './exit-guard.js';

export declare function markNativeCalls(data: ExitGuardData): void;
export declare function nativeCall<T>(call: () => Promise<T>): Promise<T>;
