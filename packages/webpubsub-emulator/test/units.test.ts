/**
 * The emulator's small pure parts: HS256 tokens, the OData filter subset, role-based
 * permissions, the client message parser, and option checks.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ClientMessageError, encodeDataMessage, parseClientMessage, withSequenceId } from "../src/client-protocol.js";
import { startWebPubSubEmulator } from "../src/index.js";
import { JwtError, sameAudience, signHs256, verifyHs256 } from "../src/jwt.js";
import { FilterSyntaxError, parseFilter, type FilterSubject } from "../src/odata-filter.js";
import { PermissionSet } from "../src/permissions.js";
import { signatureFor } from "../src/upstream.js";

describe("HS256 tokens", () => {
  const key = "k";
  const aud = "http://127.0.0.1:1/client/hubs/h";
  const now = Date.UTC(2026, 0, 1);
  const inAnHour = now / 1000 + 3600;

  it("round-trips claims and accepts any listed audience, ignoring case and a trailing slash", () => {
    const token = signHs256({ aud, sub: "u", exp: inAnHour, role: ["r"] }, key, now);
    expect(verifyHs256(token, { key, audiences: ["https://other", `${aud.toUpperCase()}/`], now })).toMatchObject({ sub: "u", role: ["r"], iat: now / 1000 });
  });

  it("refuses a wrong key, an expired or not-yet-valid token, and a wrong audience, saying which", () => {
    const check = (token: string) => () => verifyHs256(token, { key, audiences: [aud], now });
    expect(check(signHs256({ aud, exp: inAnHour }, "other", now))).toThrow(/signature/);
    expect(check(signHs256({ aud, exp: now / 1000 }, key, now))).toThrow(/expired/);
    expect(check(signHs256({ aud, exp: inAnHour, nbf: now / 1000 + 60 }, key, now))).toThrow(/not valid before/);
    expect(check(signHs256({ aud: `${aud}x`, exp: inAnHour }, key, now))).toThrow(/audience/);
    expect(check(signHs256({ exp: inAnHour }, key, now))).toThrow(JwtError);
  });

  it("refuses alg none and malformed tokens", () => {
    const body = Buffer.from(JSON.stringify({ aud })).toString("base64url");
    const none = `${Buffer.from('{"alg":"none"}').toString("base64url")}.${body}.`;
    expect(() => verifyHs256(none, { key, audiences: [aud] })).toThrow(/HS256/);
    expect(() => verifyHs256("a.b", { key, audiences: [aud] })).toThrow(JwtError);
    expect(() => verifyHs256("!!.??.xx", { key, audiences: [aud] })).toThrow(JwtError);
  });

  it("matches the SDK's request-URL audiences across query encodings", () => {
    expect(sameAudience("http://h:1/api/hubs/j/:send?filter=userId eq 'a'", "http://h:1/api/hubs/j/:send?filter=userId%20eq%20%27a%27")).toBe(true);
    expect(sameAudience("http://h:1/api/hubs/j", "http://h:2/api/hubs/j")).toBe(false);
  });
});

describe("OData filters", () => {
  const subject = (userId: string | undefined, groups: string[] = [], connectionId = "c1"): FilterSubject => ({ userId, connectionId, groups: new Set(groups) });
  const matches = (filter: string, s: FilterSubject) => parseFilter(filter)(s);

  it("compares fields with literals, in either order, with '' escapes and null", () => {
    expect(matches("userId eq 'o''brien'", subject("o'brien"))).toBe(true);
    expect(matches("'bob' eq userId", subject("bob"))).toBe(true);
    expect(matches("userId eq null", subject(undefined))).toBe(true);
    expect(matches("userId ne null", subject(undefined))).toBe(false);
    expect(matches("connectionId eq 'c1'", subject("x"))).toBe(true);
    expect(matches("userId gt 'm'", subject("z"))).toBe(true);
    expect(matches("userId le 'm'", subject("z"))).toBe(false);
  });

  it("checks group membership and combines with and, or, not and parentheses (and binds tighter)", () => {
    expect(matches("'a' in groups", subject("u", ["a"]))).toBe(true);
    expect(matches("not ('a' in groups)", subject("u", ["a"]))).toBe(false);
    expect(matches("userId eq 'x' or userId eq 'u' and 'b' in groups", subject("x"))).toBe(true);
    expect(matches("(userId eq 'x' or userId eq 'u') and 'b' in groups", subject("x"))).toBe(false);
    expect(matches("USERID EQ 'u' AND 'g' IN GROUPS", subject("u", ["g"]))).toBe(true);
  });

  it("refuses what it does not support instead of matching everything", () => {
    for (const bad of ["", "userId", "userId eq", "userId eq 'a", "length(userId)", "role eq 'a'", "userId eq 'a' extra", "(userId eq 'a'", "'a' in roles", "frobnicate(userId)", "userId eq 1", "groups eq 'a'"]) {
      expect(() => parseFilter(bad), bad).toThrow(FilterSyntaxError);
    }
  });

  it("evaluates the documented functions, in-lists, integers, booleans and groups, with OData's nulls", () => {
    const dashed = subject("user-ab-de", ["a", "b"]);
    expect(matches("substring(userId,5,2) eq 'ab' and substring(userId,8) eq 'de'", dashed)).toBe(true);
    expect(matches("startswith(userId,'user') and contains(userId,'-ab-') and indexof(userId,'ab') eq 5", dashed)).toBe(true);
    expect(matches("toupper(trim(concat(' ', userId))) eq 'USER-AB-DE'", dashed)).toBe(true);
    expect(matches("length(userId) eq 10 and length(groups) ge 2 and true", dashed)).toBe(true);
    expect(matches("userId in ('x', 'user-ab-de') and not ('c' in groups)", dashed)).toBe(true);
    expect(matches("UserId eq 'user-ab-de' and TOLOWER(userId) ne 'x'", dashed)).toBe(true);
    expect(matches("length(userId) lt 3", subject(undefined))).toBe(false);
    expect(matches("not (length(userId) gt 5)", subject(undefined))).toBe(true);
    expect(matches("not endswith(userId,'de')", subject(undefined))).toBe(false); // not null is null
  });

  it("names syntax errors by position and type errors by expression, as the service does", () => {
    const failure = (filter: string) => {
      try {
        parseFilter(filter);
      } catch (error) {
        return { subject: (error as FilterSyntaxError).subject, message: (error as Error).message };
      }
      throw new Error(`${filter} parsed`);
    };
    expect(failure("invalid filter")).toEqual({ subject: "invalid filter", message: "Syntax error at position 14 in 'invalid filter'." });
    expect(failure("not length(userId) gt 5")).toEqual({ subject: "not length(userId)", message: "Type 'null', expect 'bool'." });
    expect(failure("userId eq 'a")).toMatchObject({ message: "There is an unterminated string literal at position 12 in 'userId eq 'a'." });
    expect(failure("userId eq #")).toMatchObject({ message: "Syntax error: character '#' is not valid at position 10 in 'userId eq #'." });
    expect(failure("userId eq")).toMatchObject({ message: "Expression expected at position 9 in 'userId eq'." });
  });
});

describe("permissions from roles", () => {
  it("grants per group or for all groups, and revokes", () => {
    const set = PermissionSet.fromRoles(["webpubsub.joinLeaveGroup.a", "webpubsub.sendToGroup", "webpubsub.sendToGroupX", "other"]);
    expect(set.has("joinLeaveGroup", "a")).toBe(true);
    expect(set.has("joinLeaveGroup", "b")).toBe(false);
    expect(set.has("joinLeaveGroup")).toBe(false);
    expect(set.has("sendToGroup", "anything")).toBe(true);
    set.revoke("sendToGroup");
    expect(set.has("sendToGroup", "anything")).toBe(false);
    set.grant("sendToGroup", "x");
    set.revoke("sendToGroup", "x");
    expect(set.has("sendToGroup", "x")).toBe(false);
  });
});

describe("client messages", () => {
  it("parses the JSON subprotocol messages and decodes binary from base64", () => {
    expect(parseClientMessage('{"type":"sendToGroup","group":"g","dataType":"binary","data":"AQI=","ackId":3,"noEcho":true}')).toEqual({
      type: "sendToGroup",
      group: "g",
      payload: { dataType: "binary", bytes: Buffer.from([1, 2]) },
      noEcho: true,
      ackId: 3,
    });
    expect(parseClientMessage('{"type":"sequenceAck","sequenceId":7}')).toEqual({ type: "sequenceAck", sequenceId: 7 });
  });

  it("keeps the ackId of a bad message so the service can answer with a failed ack", () => {
    const attempt = () => parseClientMessage('{"type":"joinGroup","ackId":9}');
    expect(attempt).toThrow(ClientMessageError);
    try {
      attempt();
    } catch (error) {
      expect((error as ClientMessageError).ackId).toBe(9);
    }
    expect(() => parseClientMessage('{"type":"sendToGroup","group":"g","dataType":"xml","data":""}')).toThrow(/dataType/);
    expect(() => parseClientMessage("not json")).toThrow(ClientMessageError);
  });

  it("builds data frames once and splices sequence ids", () => {
    const frame = encodeDataMessage({ from: "group", group: "g", fromUserId: "u" }, { dataType: "json", json: '{"a":1}' });
    expect(JSON.parse(withSequenceId(frame, 5))).toEqual({ type: "message", from: "group", fromUserId: "u", group: "g", dataType: "json", data: { a: 1 }, sequenceId: 5 });
  });
});

describe("event signatures", () => {
  it("is sha256= and the hex HMAC of the connection id under the access key", () => {
    expect(signatureFor("key", "conn")).toBe(`sha256=${createHmac("sha256", "key").update("conn").digest("hex")}`);
  });
});

describe("emulator options", () => {
  it("refuses an invalid hub name or a mistyped event handler at start-up", async () => {
    await expect(startWebPubSubEmulator({ hubs: ["jobs", "no spaces"] })).rejects.toThrow(/hub name "no spaces" is invalid/);
    await expect(startWebPubSubEmulator({ eventHandlers: [{ hub: "h", urlTemplate: "localhost:7071/api" }] })).rejects.toThrow(/not an absolute http\(s\) URL/);
    await expect(startWebPubSubEmulator({ eventHandlers: [{ hub: "h", urlTemplate: "http://x/", systemEvents: ["conected"] }] })).rejects.toThrow(/unknown system events conected/);
  });
});
