/**
 * Geometry of the top-words bar chart, apart from the DOM so it is tested directly: one horizontal
 * bar per word, most frequent first, lengths proportional to the counts (the longest bar fills the
 * plot), labels shortened so they fit their column.
 */
import type { TopWord } from "../api-types";

export interface ChartGeometry {
  /** Total width of the drawing (viewBox units; the SVG scales to its container). */
  readonly width: number;
  readonly labelWidth: number;
  readonly countWidth: number;
  readonly barHeight: number;
  readonly gap: number;
}

export const defaultGeometry: ChartGeometry = { width: 480, labelWidth: 128, countWidth: 56, barHeight: 22, gap: 8 };

export interface ChartBar {
  readonly word: string;
  /** The word as drawn: shortened with an ellipsis when longer than {@link MAX_LABEL_CHARACTERS}. */
  readonly label: string;
  readonly count: number;
  /** Top of the bar. */
  readonly y: number;
  readonly barX: number;
  readonly barWidth: number;
}

export interface ChartLayout {
  readonly width: number;
  readonly height: number;
  readonly bars: readonly ChartBar[];
}

export const MAX_LABEL_CHARACTERS = 14;

function shorten(word: string): string {
  const characters = [...word];
  return characters.length > MAX_LABEL_CHARACTERS ? `${characters.slice(0, MAX_LABEL_CHARACTERS - 1).join("")}…` : word;
}

export function wordChartLayout(words: readonly TopWord[], geometry: ChartGeometry = defaultGeometry): ChartLayout {
  const plot = geometry.width - geometry.labelWidth - geometry.countWidth;
  const max = Math.max(1, ...words.map((w) => w.count));
  const bars = words.map((word, i) => ({
    word: word.word,
    label: shorten(word.word),
    count: word.count,
    y: i * (geometry.barHeight + geometry.gap),
    barX: geometry.labelWidth,
    // A count of 1 among thousands still shows as a sliver.
    barWidth: Math.max(2, Math.round((word.count / max) * plot)),
  }));
  const height = words.length === 0 ? 0 : words.length * geometry.barHeight + (words.length - 1) * geometry.gap;
  return { width: geometry.width, height, bars };
}

/** The chart's text alternative: every word with its count, in order. */
export function chartDescription(words: readonly TopWord[]): string {
  if (words.length === 0) return "No words were found.";
  return `Most frequent words: ${words.map((w) => `${w.word} (${w.count})`).join(", ")}.`;
}
