/** A seed per (base seed, name), so adding a flow does not change the states of the others. */
export function seedFor(base: number, name: string): number {
  let hash = base >>> 0;
  for (const char of name) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return hash;
}
