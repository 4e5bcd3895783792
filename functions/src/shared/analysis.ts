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
 *
 * Memory is bounded whatever the input: the frequency table holds at most
 * {@link MAX_TRACKED_WORDS} distinct words. Up to that many distinct words every count is exact
 * (a text job's 100,000 characters hold at most 50,000 words, so text jobs are always exact).
 * Past it the table becomes a Misra-Gries summary: when a new word finds the table full, every
 * count drops by one and the words left at zero leave. Every word that occurs more often than
 * `d` (the number of such drops, at most words / (MAX_TRACKED_WORDS + 1)) stays in the table.
 * {@link analyzeReopenable} then reads the input a second time and counts exactly the words the
 * summary kept; the top words are exact whenever the tenth of them occurs more than `d` times,
 * which natural-language text satisfies (its frequent words are far more frequent than one in
 * 50,000). Otherwise (e.g. a file of nearly all-distinct tokens) topWords lists words the summary
 * kept, with exact counts, and a word that occurs at most `d` times may be missing.
 * characters, words, lines and readingTimeSeconds are exact in every case.
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
/**
 * Most distinct words the frequency table holds (see the module comment): a few MB of words and
 * counters at most (keys are at most 64 characters), the largest part of a job's bounded memory.
 */
export const MAX_TRACKED_WORDS = 50_000;

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

export interface TextAnalyzerOptions {
  /** Distinct words counted before the table becomes a summary. @default MAX_TRACKED_WORDS */
  readonly maxTrackedWords?: number;
  /**
   * Count only these words, exactly (the second read of {@link analyzeReopenable}): the table
   * starts with them and takes no others.
   */
  readonly recount?: Iterable<string>;
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
  private readonly maxTrackedWords: number;
  private readonly recounting: boolean;
  /** How often the full table dropped every count by one: no word outside it occurs more often. */
  private drops = 0;
  private finished = false;

  constructor(options: TextAnalyzerOptions = {}) {
    this.maxTrackedWords = options.maxTrackedWords ?? MAX_TRACKED_WORDS;
    this.recounting = options.recount !== undefined;
    for (const word of options.recount ?? []) this.counts.set(word, 0);
  }

  /**
   * The Misra-Gries error bound: 0 while every count is exact; otherwise counts are low by at most
   * this much and a word missing from the table occurs at most this often.
   */
  get summaryError(): number {
    return this.drops;
  }

  /** The words in the table: after an overflow, every word that may rank. */
  trackedWords(): IterableIterator<string> {
    return this.counts.keys();
  }

  /** How many distinct words the table holds now (never more than maxTrackedWords). */
  get trackedWordCount(): number {
    return this.counts.size;
  }

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
      this.count(word.toLowerCase().replace(/’/g, "'").replace(/‐/g, "-"));
    }
    this.longWordOpen = false;
    this.lastCharacter = text.slice(-1);
  }

  private count(key: string): void {
    const current = this.counts.get(key);
    if (current !== undefined) {
      this.counts.set(key, current + 1);
      return;
    }
    if (this.recounting) return;
    if (this.counts.size < this.maxTrackedWords) {
      this.counts.set(key, 1);
      return;
    }
    // Misra-Gries: the table is full, so this word and every counted one lose one occurrence. A
    // pass costs the table's size and removes as many occurrences, so the total stays linear.
    this.drops += 1;
    for (const [word, n] of this.counts) {
      if (n === 1) this.counts.delete(word);
      else this.counts.set(word, n - 1);
    }
  }

  private topWords(): TopWord[] {
    // One pass keeping the best 10: no sort of the whole vocabulary.
    const best: TopWord[] = [];
    for (const [word, count] of this.counts) {
      if (count === 0) continue;
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
  /** @default MAX_TRACKED_WORDS */
  maxTrackedWords?: number;
}

/**
 * Analyses a stream of UTF-8 bytes (a blob download) as it arrives. Stops reading and throws
 * {@link InputRejected} as soon as the input passes `maxBytes` or is not valid UTF-8, so a huge or
 * binary blob costs at most `maxBytes` of transfer and no more memory than one chunk and the
 * bounded frequency table. Past MAX_TRACKED_WORDS distinct words the top words come from the
 * summary (counts low by at most its error); {@link analyzeReopenable} makes them exact.
 */
export async function analyzeStream(source: AsyncIterable<Uint8Array | string>, limits: StreamLimits): Promise<AnalysisResult> {
  const analyzer = new TextAnalyzer(limits.maxTrackedWords === undefined ? {} : { maxTrackedWords: limits.maxTrackedWords });
  await feed(analyzer, source, limits.maxBytes);
  return analyzer.finish();
}

/** An input that can be read again from the start (a blob: each call starts a new download). */
export type Reopen = () => Promise<AsyncIterable<Uint8Array | string>> | AsyncIterable<Uint8Array | string>;

export interface ReopenableAnalysis {
  readonly result: AnalysisResult;
  /**
   * False only when the input had more than MAX_TRACKED_WORDS distinct words and the tenth top word
   * occurs no more often than the summary's error: a word that often may then be missing.
   */
  readonly topWordsExact: boolean;
  /** Times the input was read: 1, or 2 when the summary's words were counted again. */
  readonly reads: 1 | 2;
}

/**
 * {@link analyzeStream}, then, only when the input overflowed the frequency table, a second read
 * that counts exactly the words the summary kept (at most MAX_TRACKED_WORDS of them, so memory
 * stays bounded): the top words then carry exact counts (the module comment says when the list
 * itself is exact).
 */
export async function analyzeReopenable(open: Reopen, limits: StreamLimits): Promise<ReopenableAnalysis> {
  const summary = new TextAnalyzer({ maxTrackedWords: limits.maxTrackedWords ?? MAX_TRACKED_WORDS });
  await feed(summary, await open(), limits.maxBytes);
  const first = summary.finish();
  const error = summary.summaryError;
  if (error === 0) return { result: first, topWordsExact: true, reads: 1 };
  const recount = new TextAnalyzer({ recount: summary.trackedWords() });
  await feed(recount, await open(), limits.maxBytes);
  const topWords = recount.finish().topWords;
  const tenth = topWords[TOP_WORDS - 1];
  return { result: { ...first, topWords }, topWordsExact: tenth !== undefined && tenth.count > error, reads: 2 };
}

async function feed(analyzer: TextAnalyzer, source: AsyncIterable<Uint8Array | string>, maxBytes: number): Promise<void> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
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
    if (bytes > maxBytes) {
      throw new InputRejected("InputTooLarge", `the input is larger than the limit of ${maxBytes} bytes`);
    }
    const text = decode(data, true);
    if (text.includes("\u0000")) throw new InputRejected("InputNotText", "the input is binary (it contains NUL characters), not text");
    analyzer.push(text);
  }
  analyzer.push(decode(undefined, false));
}
