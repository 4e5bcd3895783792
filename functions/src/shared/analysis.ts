/**
 * The built-in text analysis: characters, words, lines, the 10 most frequent words and the reading
 * time. Pure (no SDK, no I/O of its own) and incremental, so a blob is analysed chunk by chunk as it
 * streams in: memory holds the word counts and one partial word, never the whole file.
 *
 * Definitions (stable, because results are stored and compared):
 * - characters: Unicode code points (a surrogate pair, e.g. an emoji, is one), after UTF-8
 *   decoding; a leading byte-order mark is not counted.
 * - words: maximal runs of letters, combining marks and digits, joined by inner apostrophes
 *   ("don't", "l'homme") or hyphens ("state-of-the-art"). Counted case-insensitively for topWords.
 * - lines: line breaks are \n, \r\n and a lone \r; a final line without a break counts; empty text
 *   has 0 lines.
 * - topWords: the 10 most frequent words, most frequent first, ties in alphabetical (code point)
 *   order so the result is deterministic.
 * - readingTimeSeconds: words at {@link READING_WORDS_PER_MINUTE}, rounded up to a whole second.
 */
import type { AnalysisResult, TopWord } from "./job.js";

/** Average adult silent reading speed for prose, words per minute (Brysbaert 2019: 238). */
export const READING_WORDS_PER_MINUTE = 238;
export const TOP_WORDS = 10;
/**
 * Longer "words" are still counted but not ranked: a base64 blob or a minified line would
 * otherwise sit in the frequency table as one enormous key.
 */
export const MAX_RANKED_WORD_LENGTH = 64;

/** Input the analysis refuses: permanent, retrying cannot help (the agent fails the job at once). */
export class InputRejected extends Error {
  constructor(
    readonly code: "InputTooLarge" | "InputNotText",
    message: string,
  ) {
    super(message);
    this.name = "InputRejected";
  }
}

const WORD = /[\p{L}\p{M}\p{N}]+(?:['’\-‐][\p{L}\p{M}\p{N}]+)*/gu;
const WORD_CHARACTER = /^[\p{L}\p{M}\p{N}]$/u;
const JOINERS = new Set(["'", "’", "-", "‐"]);
/**
 * A trailing word longer than this (code units) is not held back whole: it is counted, left
 * unranked, and only its last character is carried, so one enormous "word" (a minified or base64
 * file) costs neither memory nor quadratic re-scanning.
 */
const MAX_CARRIED_WORD = 4096;

/** The code point ending at `end` (exclusive) and its width in code units. */
function codePointBefore(text: string, end: number): { codePoint: string; width: number } {
  const low = text.charCodeAt(end - 1);
  if (low >= 0xdc00 && low <= 0xdfff && end >= 2) {
    const high = text.charCodeAt(end - 2);
    if (high >= 0xd800 && high <= 0xdbff) return { codePoint: text.slice(end - 2, end), width: 2 };
  }
  return { codePoint: text.slice(end - 1, end), width: 1 };
}
const isWordCharacter = (codePoint: string) => WORD_CHARACTER.test(codePoint);

/**
 * Where the part of `text` that the next chunk may still change begins: a trailing partial word
 * (with a trailing joiner: "don'" may become "don't"), a \r whose \n may follow, or a high
 * surrogate whose low half may follow. Scans backwards, so the cost is the tail's length.
 */
function openTailStart(text: string): number {
  let end = text.length;
  if (end === 0) return 0;
  const last = text.charCodeAt(end - 1);
  if (last === 13) return end - 1;
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  let start = end;
  if (start > 0 && JOINERS.has(text[start - 1]!)) start -= 1;
  let sawWord = false;
  while (start > 0) {
    const before = codePointBefore(text, start);
    if (isWordCharacter(before.codePoint)) {
      start -= before.width;
      sawWord = true;
      continue;
    }
    // A joiner belongs to the word only between two word characters.
    if (sawWord && JOINERS.has(before.codePoint) && start - 1 > 0 && isWordCharacter(codePointBefore(text, start - 1).codePoint)) {
      start -= 1;
      continue;
    }
    break;
  }
  return sawWord ? start : end;
}

/** Incremental analyser: push text in any chunking, then {@link finish}; same result as one push. */
export class TextAnalyzer {
  private characters = 0;
  private words = 0;
  private lineBreaks = 0;
  private lastCharacter = "";
  private pending = "";
  /** A word too long to carry is in progress: it is already counted, its continuation is not. */
  private longWordOpen = false;
  private readonly counts = new Map<string, number>();
  private finished = false;

  push(chunk: string): void {
    if (this.finished) throw new Error("TextAnalyzer: push after finish");
    if (chunk.length === 0) return;
    const text = this.pending + chunk;
    const cut = openTailStart(text);
    this.consume(text.slice(0, cut));
    this.pending = text.slice(cut);
    if (this.pending.length > MAX_CARRIED_WORD) this.dropLongWord();
  }

  finish(): AnalysisResult {
    if (!this.finished) {
      this.consume(this.pending);
      this.pending = "";
      this.finished = true;
    }
    const endsWithBreak = this.lastCharacter === "\n" || this.lastCharacter === "\r";
    const lines = this.lastCharacter === "" ? 0 : this.lineBreaks + (endsWithBreak ? 0 : 1);
    return {
      characters: this.characters,
      words: this.words,
      lines,
      topWords: this.topWords(),
      readingTimeSeconds: Math.ceil((this.words * 60) / READING_WORDS_PER_MINUTE),
    };
  }

  /** Counts all of the pending word but the last word character (and what follows it), which is carried. */
  private dropLongWord(): void {
    let keepFrom = this.pending.length;
    while (keepFrom > 0) {
      const before = codePointBefore(this.pending, keepFrom);
      keepFrom -= before.width;
      if (isWordCharacter(before.codePoint)) break;
    }
    const dropped = this.pending.slice(0, keepFrom);
    for (const _codePoint of dropped) this.characters += 1;
    if (!this.longWordOpen) this.words += 1;
    this.longWordOpen = true;
    this.lastCharacter = dropped.slice(-1);
    this.pending = this.pending.slice(keepFrom);
  }

  /** `text` is complete: no word, \r\n pair or surrogate pair continues past its end. */
  private consume(text: string): void {
    if (text.length === 0) return;
    for (const _codePoint of text) this.characters += 1;
    for (let i = 0; i < text.length; i += 1) {
      const code = text.charCodeAt(i);
      if (code === 10) this.lineBreaks += 1;
      else if (code === 13 && text.charCodeAt(i + 1) !== 10) this.lineBreaks += 1; // lone \r; \r\n counts at its \n
    }
    for (const match of text.matchAll(WORD)) {
      if (this.longWordOpen && match.index === 0) continue; // the end of a long word, counted when it was dropped
      this.words += 1;
      const word = match[0];
      if (word.length > MAX_RANKED_WORD_LENGTH) continue;
      const key = word.toLowerCase().replace(/’/g, "'").replace(/‐/g, "-");
      this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    }
    this.longWordOpen = false;
    this.lastCharacter = text.slice(-1);
  }

  private topWords(): TopWord[] {
    // One pass keeping the best 10: no sort of the whole vocabulary.
    const best: TopWord[] = [];
    for (const [word, count] of this.counts) {
      if (best.length === TOP_WORDS && !ranksBefore(word, count, best[TOP_WORDS - 1]!)) continue;
      let at = best.length;
      while (at > 0 && ranksBefore(word, count, best[at - 1]!)) at -= 1;
      best.splice(at, 0, { word, count });
      if (best.length > TOP_WORDS) best.pop();
    }
    return best;
  }
}

function ranksBefore(word: string, count: number, other: TopWord): boolean {
  return count > other.count || (count === other.count && word < other.word);
}

/** Analyses a complete text. */
export function analyzeText(text: string): AnalysisResult {
  const analyzer = new TextAnalyzer();
  analyzer.push(text);
  return analyzer.finish();
}

export interface StreamLimits {
  /** Largest input accepted, in bytes; larger input fails with InputRejected("InputTooLarge"). */
  maxBytes: number;
}

/**
 * Analyses a stream of UTF-8 bytes (a blob download) as it arrives. Stops reading and throws
 * {@link InputRejected} as soon as the input passes `maxBytes` or is not valid UTF-8, so a huge or
 * binary blob costs at most `maxBytes` of transfer and no more memory than one chunk.
 */
export async function analyzeStream(source: AsyncIterable<Uint8Array | string>, limits: StreamLimits): Promise<AnalysisResult> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const analyzer = new TextAnalyzer();
  let bytes = 0;
  const decode = (chunk: Uint8Array | undefined, stream: boolean) => {
    try {
      return chunk ? decoder.decode(chunk, { stream }) : decoder.decode();
    } catch {
      throw new InputRejected("InputNotText", "the input is not UTF-8 text");
    }
  };
  for await (const chunk of source) {
    const data = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    bytes += data.byteLength;
    if (bytes > limits.maxBytes) {
      throw new InputRejected("InputTooLarge", `the input is larger than the limit of ${limits.maxBytes} bytes`);
    }
    const text = decode(data, true);
    if (text.includes("\u0000")) throw new InputRejected("InputNotText", "the input is binary (it contains NUL characters), not text");
    analyzer.push(text);
  }
  analyzer.push(decode(undefined, false));
  return analyzer.finish();
}
