/** `value` rounded up to a multiple of `align` (a power of two: 4 or 8 for notes and records, a page). */
export function alignUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}
