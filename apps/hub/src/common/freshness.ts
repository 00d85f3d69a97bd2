/** Locations observed before this instant are stale (not observed for `staleAfterS`). */
export function freshSince(staleAfterS: number, now: Date): Date {
  return new Date(now.getTime() - staleAfterS * 1000);
}
