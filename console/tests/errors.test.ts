import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ApiProblem, MESSAGES, fieldErrors, fieldMessage, problemMessage, toProblem } from "../src/api/errors";

/** Every code the API documents, read from the committed openapi.json ("Problem: a, b" descriptions). */
function documentedCodes(): Set<string> {
  const doc = JSON.parse(readFileSync(new URL("../openapi.json", import.meta.url), "utf8"));
  const codes = new Set<string>();
  for (const item of Object.values(doc.paths) as Record<string, { responses?: Record<string, { description?: string }> }>[]) {
    for (const op of Object.values(item)) {
      for (const response of Object.values(op.responses ?? {})) {
        const m = response.description?.match(/^Problem: (.*)$/);
        m?.[1].split(/,\s*/).forEach((c) => codes.add(c.trim()));
      }
    }
  }
  return codes;
}

describe("problem messages", () => {
  it("has a Chinese sentence for every code the API documents", () => {
    const codes = documentedCodes();
    expect(codes.size).toBeGreaterThan(30);
    const missing = [...codes].filter((c) => !MESSAGES[c]);
    expect(missing).toEqual([]);
    for (const c of codes) expect(MESSAGES[c]).toMatch(/[\u4e00-\u9fff]/);
  });

  it("turns a problem+json body into an ApiProblem with its field errors", () => {
    const p = toProblem(422, {
      type: "about:blank", title: "Unprocessable", status: 422, detail: "bad", code: "invalid_request",
      errors: [{ field: "location.lat", message: "Expected `float`, got `str`" }, { nonsense: 1 }],
    }, "rid-1");
    expect(p).toBeInstanceOf(ApiProblem);
    expect(p.code).toBe("invalid_request");
    expect(p.errors).toEqual([{ field: "location.lat", message: "Expected `float`, got `str`" }]);
    expect(p.requestId).toBe("rid-1");
    expect(problemMessage(p)).toBe(MESSAGES.invalid_request);
    expect(fieldErrors(p)).toEqual({ "location.lat": "类型不正确" });
    expect(fieldErrors(p, { "location.lat": "lat" })).toEqual({ lat: "类型不正确" });
  });

  it("falls back on the status when the body is not a problem (a proxy's HTML page)", () => {
    expect(toProblem(502, "<html>").code).toBe("service_unavailable");
    expect(toProblem(401, null).code).toBe("unauthenticated");
    expect(problemMessage({ status: 418, code: "teapot" })).toContain("418");
    expect(problemMessage({ status: 500, code: "weird" })).toBe(MESSAGES.internal_error);
  });

  it("puts the server's English field messages in Chinese", () => {
    expect(fieldMessage("Expected `str` of length <= 64")).toBe("最多 64 个字符");
    expect(fieldMessage("Expected `str` of length >= 10")).toBe("至少 10 个字符");
    expect(fieldMessage("Object missing required field `name`")).toBe("必填");
    expect(fieldMessage("something new")).toBe("填写有误");
  });
});
