/** The smallest multiple of `align` at or above `n` (`align` of 0 or 1: `n`). */
export function alignUp(n: number, align: number): number {
  return align <= 1 ? n : Math.ceil(n / align) * align;
}
