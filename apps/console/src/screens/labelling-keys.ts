/**
 * The labelling queue's keyboard map. Category keys: 1–9, 0, then letters; the letters the
 * queue itself uses (s skip, u undo) are never given to a category.
 */
export const RESERVED_KEYS = new Set(['s', 'u']);
const CATEGORY_KEYS = [...'1234567890', ...'abcdefghijklmnopqrstuvwxyz'].filter((k) => !RESERVED_KEYS.has(k));

/** Key → category name, in the order of `names` (sorted by the caller, so keys stay put). */
export function categoryKeys(names: string[]): Map<string, string> {
  const map = new Map<string, string>();
  names.slice(0, CATEGORY_KEYS.length).forEach((name, i) => map.set(CATEGORY_KEYS[i] as string, name));
  return map;
}

/** The fixed keys, for the `?` list. */
export const QUEUE_KEYS: Array<[string, string]> = [
  ['← → ↑ ↓', 'move the selection'],
  ['1–9, 0, a–z', 'label the selected sample (or the selected cluster) with that category'],
  ['s', 'skip the selected sample'],
  ['u or Ctrl+Z', 'undo the last label or skip'],
  ['Enter', 'show samples similar to the selected one (a cluster to label in one go)'],
  ['Space', 'in a cluster: include or leave out the highlighted sample'],
  ['Esc', 'close the cluster or this list'],
  ['?', 'show or hide this list'],
];

/** True when a key event belongs to a form field or a focused control, not to the queue. */
export function typingInField(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  if (!t) return false;
  if (t.tagName === 'INPUT' || t.tagName === 'SELECT' || t.tagName === 'TEXTAREA' || t.isContentEditable) return true;
  // Enter and Space on a focused button or link press it; they are not queue keys then.
  return (e.key === 'Enter' || e.key === ' ') && (t.tagName === 'BUTTON' || t.tagName === 'A' || t.tagName === 'SUMMARY');
}
