/** What bmaptool create's XML says. */
export interface BmapSizes {
  imageBytes: number;
  mappedBytes: number;
  blockSize: number;
  /** mapped block ranges, inclusive */
  ranges: Array<{ first: number; last: number }>;
}

/** What a bmap (bmaptool create's XML) says flashing writes: the image size and the mapped blocks. */
export function parseBmapSizes(xml: string): BmapSizes {
  const field = (name: string) => {
    const match = new RegExp(`<${name}>\\s*(\\d+)\\s*</${name}>`).exec(xml);
    if (!match) throw new Error(`bmap has no ${name}`);
    return Number(match[1]);
  };
  const blockSize = field('BlockSize');
  const ranges = [...xml.matchAll(/<Range[^>]*>\s*(\d+)(?:-(\d+))?\s*<\/Range>/g)].map((m) => ({
    first: Number(m[1]),
    last: Number(m[2] ?? m[1]),
  }));
  return { imageBytes: field('ImageSize'), mappedBytes: field('MappedBlocksCount') * blockSize, blockSize, ranges };
}
