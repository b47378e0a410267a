// class-transformer keeps its decorator metadata in this module and exports it, without a declaration of its own
declare module 'class-transformer/cjs/storage' {
  export { defaultMetadataStorage } from 'class-transformer/types/storage';
}
