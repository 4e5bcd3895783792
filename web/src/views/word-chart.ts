/**
 * The top words as an inline SVG bar chart (no chart library): an image to assistive technology
 * (`role="img"`) whose name is the title and whose description lists every word with its count.
 * Colours come from the style sheet (classes), so the policy needs no inline style.
 */
import type { TopWord } from "../api-types";
import { s } from "./dom";
import { chartDescription, defaultGeometry, wordChartLayout } from "./word-chart-layout";

let chartCount = 0;

export function wordChart(words: readonly TopWord[]): SVGSVGElement {
  const layout = wordChartLayout(words);
  const id = `word-chart-${++chartCount}`;
  const textY = defaultGeometry.barHeight / 2;
  return s(
    "svg",
    {
      class: "word-chart",
      role: "img",
      "aria-labelledby": `${id}-title ${id}-desc`,
      viewBox: `0 0 ${layout.width} ${Math.max(layout.height, 1)}`,
      width: "100%",
      preserveAspectRatio: "xMinYMin meet",
    },
    s("title", { id: `${id}-title` }, "Top words"),
    s("desc", { id: `${id}-desc` }, chartDescription(words)),
    ...layout.bars.map((bar) =>
      s(
        "g",
        { transform: `translate(0 ${bar.y})`, "aria-hidden": "true" },
        s("title", {}, `${bar.word}: ${bar.count}`),
        s("text", { class: "word-chart-label", x: bar.barX - 8, y: textY, "text-anchor": "end", "dominant-baseline": "central" }, bar.label),
        s("rect", { class: "word-chart-bar", x: bar.barX, y: 0, width: bar.barWidth, height: defaultGeometry.barHeight, rx: 3 }),
        s("text", { class: "word-chart-count", x: bar.barX + bar.barWidth + 6, y: textY, "dominant-baseline": "central" }, bar.count),
      ),
    ),
  );
}
