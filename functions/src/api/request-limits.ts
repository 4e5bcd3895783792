/**
 * The api's request body limit, in a module of its own (no imports) so that the service registry
 * can hand it to the Functions host (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT) without loading the HTTP layer.
 */

/**
 * Largest request body accepted, in bytes: a text job of the maximum length fits, even with every
 * character JSON-escaped as `\uXXXX` (100,000 x 6 bytes). The host refuses larger bodies (413)
 * before a function runs; the api's own reader stops at the same number.
 */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
