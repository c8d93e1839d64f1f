// node-gyp-build ships no types; these are the helpers the addon loader uses.
declare module 'node-gyp-build' {
  interface Tags {
    file: string;
    specificity: number;
    runtime?: string;
    napi?: boolean;
    abi?: string;
    uv?: string;
    armv?: string;
    libc?: string;
  }
  interface Tuple {
    name: string;
    platform: string;
    architectures: string[];
  }
  interface Load {
    (dir: string): unknown;
    resolve(dir: string): string;
    parseTags(file: string): Tags | undefined;
    matchTags(runtime: string, abi: string): (tags: Tags | undefined) => boolean;
    compareTags(runtime: string): (a: Tags, b: Tags) => number;
    parseTuple(name: string): Tuple | undefined;
    matchTuple(platform: string, arch: string): (tuple: Tuple | undefined) => boolean;
    compareTuples(a: Tuple, b: Tuple): number;
  }
  const load: Load;
  export default load;
}
