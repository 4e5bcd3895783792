import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  analyzeReopenable,
  analyzeStream,
  analyzeText,
  InputRejected,
  MAX_RANKED_WORD_LENGTH,
  MAX_TRACKED_WORDS,
  READING_WORDS_PER_MINUTE,
  TextAnalyzer,
} from "../../functions/src/shared/analysis.js";
import { AnalysisResult } from "../../functions/src/shared/job.js";

/** A straightforward whole-text implementation of the documented definitions, to compare against. */
function reference(text: string): AnalysisResult {
  const words = text.match(/[\p{L}\p{M}\p{N}]+(?:['’\-‐][\p{L}\p{M}\p{N}]+)*/gu) ?? [];
  const counts = new Map<string, number>();
  for (const word of words) {
    if (word.length > MAX_RANKED_WORD_LENGTH) continue;
    const key = word.toLowerCase().replace(/’/g, "'").replace(/‐/g, "-");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const topWords = [...counts]
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0))
    .slice(0, 10)
    .map(([word, count]) => ({ word, count }));
  const lines = text === "" ? 0 : text.split(/\r\n|\n|\r/).length - (/[\r\n]$/.test(text) ? 1 : 0);
  return { characters: [...text].length, words: words.length, lines, topWords, readingTimeSeconds: Math.ceil((words.length * 60) / READING_WORDS_PER_MINUTE) };
}

function analyzeInChunks(text: string, cuts: number[]): AnalysisResult {
  const analyzer = new TextAnalyzer();
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    analyzer.push(text.slice(from, cut));
    from = cut;
  }
  analyzer.push(text.slice(from));
  return analyzer.finish();
}

async function* chunksOf(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let from = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    yield bytes.subarray(from, cut);
    from = cut;
  }
  yield bytes.subarray(from);
}

// Characters chosen to hit every boundary rule: joiners, \r\n, combining marks, astral letters.
const alphabet = ["a", "B", "é", "e\u0301", "ß", "7", " ", "  ", "\n", "\r", "\r\n", "'", "’", "-", "‐", ".", "😀", "𝐀", "日本", "don't", "The", "the", "\t"];
const texts = fc.array(fc.constantFrom(...alphabet), { maxLength: 60 }).map((parts) => parts.join(""));

describe("analyzeText", () => {
  it("computes the documented statistics of a known text", () => {
    const result = analyzeText("The cat saw the other cat.\nThe end\r\nDon't stop: state-of-the-art 42!\r");
    expect(result).toEqual({
      characters: 69,
      words: 12,
      lines: 3,
      topWords: [
        { word: "the", count: 3 },
        { word: "cat", count: 2 },
        { word: "42", count: 1 },
        { word: "don't", count: 1 },
        { word: "end", count: 1 },
        { word: "other", count: 1 },
        { word: "saw", count: 1 },
        { word: "state-of-the-art", count: 1 },
        { word: "stop", count: 1 },
      ],
      readingTimeSeconds: Math.ceil((12 * 60) / READING_WORDS_PER_MINUTE),
    });
    expect(() => AnalysisResult.parse(result)).not.toThrow();
  });

  it("counts nothing in empty text and one line in text without a break", () => {
    expect(analyzeText("")).toEqual({ characters: 0, words: 0, lines: 0, topWords: [], readingTimeSeconds: 0 });
    expect(analyzeText("  ")).toMatchObject({ characters: 2, words: 0, lines: 1 });
    expect(analyzeText("\n\n")).toMatchObject({ lines: 2 });
  });

  it("counts code points, not UTF-16 units, and keeps combining marks inside words", () => {
    expect(analyzeText("😀 e\u0301te")).toMatchObject({ characters: 6, words: 1, topWords: [{ word: "e\u0301te", count: 1 }] });
  });

  it("keeps only ten words, most frequent first, ties alphabetical", () => {
    const text = Array.from({ length: 12 }, (_, i) => `w${String.fromCharCode(97 + i)} `.repeat(i < 3 ? 5 - i : 1)).join("");
    const { topWords } = analyzeText(text);
    expect(topWords.map((entry) => entry.word)).toEqual(["wa", "wb", "wc", "wd", "we", "wf", "wg", "wh", "wi", "wj"]);
    expect(topWords[0]).toEqual({ word: "wa", count: 5 });
  });

  it("matches the whole-text reference for any text", () => {
    fc.assert(fc.property(texts, (text) => {
      expect(analyzeText(text)).toEqual(reference(text));
    }), { numRuns: 300 });
  });

  it("gives the same result however the text is split into chunks", () => {
    const textAndCuts = texts.chain((text) => fc.tuple(fc.constant(text), fc.array(fc.nat({ max: text.length }), { maxLength: 8 })));
    fc.assert(
      fc.property(textAndCuts, ([text, cuts]) => {
        expect(analyzeInChunks(text, cuts)).toEqual(reference(text));
      }),
      { numRuns: 400 },
    );
  });

  it("counts a huge word once, ranks it never, and carries only a bounded part of it", () => {
    const analyzer = new TextAnalyzer();
    analyzer.push("start ");
    for (let i = 0; i < 50; i += 1) analyzer.push("x".repeat(1000));
    analyzer.push("-y z\n");
    expect((analyzer as unknown as { pending: string }).pending.length).toBeLessThanOrEqual(1);
    expect(analyzer.finish()).toEqual({
      ...reference(`start ${"x".repeat(50_000)}-y z\n`),
      words: 3,
      lines: 1,
    });
    expect(analyzeInChunks(`a ${"y".repeat(10_000)}`, [5000, 9000])).toEqual(reference(`a ${"y".repeat(10_000)}`));
  });

  it("refuses a push after finish", () => {
    const analyzer = new TextAnalyzer();
    analyzer.finish();
    expect(() => analyzer.push("late")).toThrow(/after finish/);
  });
});

describe("analyzeStream", () => {
  it("decodes UTF-8 split anywhere, even inside a multi-byte character", async () => {
    const text = "Grüße 😀 aus Köln\r\nzweite Zeile, Köln";
    const bytes = new TextEncoder().encode(text);
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat({ max: bytes.length }), { maxLength: 10 }), async (cuts) => {
        expect(await analyzeStream(chunksOf(bytes, cuts), { maxBytes: 1024 })).toEqual(reference(text));
      }),
      { numRuns: 100 },
    );
  });

  it("does not count a byte-order mark", async () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("hi")]);
    expect(await analyzeStream(chunksOf(bytes, [1]), { maxBytes: 10 })).toMatchObject({ characters: 2, words: 1 });
  });

  it("accepts input of exactly the limit and stops reading as soon as it is passed", async () => {
    const exact = new TextEncoder().encode("abcd ".repeat(20));
    await expect(analyzeStream(chunksOf(exact, [33, 66]), { maxBytes: 100 })).resolves.toMatchObject({ words: 20 });
    let pulled = 0;
    async function* endless() {
      for (;;) {
        pulled += 1;
        yield new TextEncoder().encode("word ".repeat(100));
      }
    }
    const rejection = await analyzeStream(endless(), { maxBytes: 2000 }).catch((error: unknown) => error);
    expect(rejection).toBeInstanceOf(InputRejected);
    expect(rejection).toMatchObject({ code: "InputTooLarge" });
    expect(pulled).toBe(5); // 500 bytes a chunk: the 5th passes 2000, nothing more is read
  });

  it.each([
    ["an invalid byte", [0x61, 0xff, 0x62]],
    ["a truncated multi-byte character at the end", [0x61, 0xe2, 0x82]],
    ["NUL characters (binary data)", [0x61, 0x00, 0x62]],
  ])("rejects %s as not text", async (_label, bytes) => {
    await expect(analyzeStream(chunksOf(new Uint8Array(bytes), [1]), { maxBytes: 100 })).rejects.toMatchObject({
      name: "InputRejected",
      code: "InputNotText",
    });
  });

  it("accepts string chunks", async () => {
    async function* strings() {
      yield "one tw";
      yield "o three";
    }
    expect(await analyzeStream(strings(), { maxBytes: 100 })).toEqual(reference("one two three"));
  });
});

/** `0 1 2 ... ` in base 36: `count` words, every one distinct (the abuse review's vocabulary attack). */
function distinctTokens(count: number, from = 0): string {
  const parts: string[] = [];
  for (let n = from; n < from + count; n += 1) parts.push(n.toString(36));
  return `${parts.join(" ")} `;
}

/** Splits text into 64 KiB UTF-8 chunks, as a download arrives; `opened` counts the reads. */
function reopenable(text: string): (() => AsyncIterable<Uint8Array>) & { opened: number } {
  const bytes = new TextEncoder().encode(text);
  const open = Object.assign(
    () => {
      open.opened += 1;
      return chunksOf(bytes, Array.from({ length: Math.floor(bytes.length / 65_536) }, (_, i) => (i + 1) * 65_536));
    },
    { opened: 0 },
  );
  return open;
}

describe("memory per job is bounded (the frequency table)", () => {
  it("never holds more than MAX_TRACKED_WORDS distinct words, however many the input has", () => {
    const analyzer = new TextAnalyzer();
    let most = 0;
    for (let chunk = 0; chunk < 8; chunk += 1) {
      analyzer.push(distinctTokens(25_000, chunk * 25_000));
      most = Math.max(most, analyzer.trackedWordCount);
    }
    expect(most).toBeLessThanOrEqual(MAX_TRACKED_WORDS);
    const result = analyzer.finish();
    // Everything but the ranking stays exact.
    expect(result).toMatchObject({ words: 200_000, lines: 1 });
    expect(analyzer.summaryError).toBeGreaterThan(0);
  });

  it("keeps every count exact up to the bound: a text job (at most 50,000 words) never reaches it", async () => {
    const text = distinctTokens(MAX_TRACKED_WORDS - 1) + "the the the a a b";
    const open = reopenable(text);
    const analysis = await analyzeReopenable(open, { maxBytes: 10 * 1024 * 1024 });
    expect(analysis).toMatchObject({ topWordsExact: true, reads: 1 });
    expect(analysis.result).toEqual(reference(text));
    expect(open.opened).toBe(1);
  });

  it("past the bound, finds the frequent words of a text with a huge vocabulary and counts them exactly in a second read", async () => {
    // Frequent words hidden in 120,000 distinct tokens, with a small table so the summary is exercised hard.
    const frequent = Array.from({ length: 12 }, (_, i) => `word${String.fromCharCode(97 + i)} `.repeat(400 - i * 20)).join("");
    const text = distinctTokens(60_000) + frequent + distinctTokens(60_000, 60_000);
    const analysis = await analyzeReopenable(reopenable(text), { maxBytes: 10 * 1024 * 1024, maxTrackedWords: 1_000 });
    expect(analysis).toMatchObject({ topWordsExact: true, reads: 2 });
    expect(analysis.result).toEqual(reference(text));
  });

  it("says when it cannot vouch for the list: nearly all-distinct input, every count 1", async () => {
    const text = distinctTokens(30_000);
    const analysis = await analyzeReopenable(reopenable(text), { maxBytes: 10 * 1024 * 1024, maxTrackedWords: 1_000 });
    expect(analysis.reads).toBe(2);
    expect(analysis.topWordsExact).toBe(false);
    // Still honest: ten words of the text, each with its true count.
    expect(analysis.result.topWords).toHaveLength(10);
    for (const { count } of analysis.result.topWords) expect(count).toBe(1);
    expect(analysis.result).toMatchObject({ words: 30_000, characters: [...text].length });
  });
});
