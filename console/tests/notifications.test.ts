// The template form's field mapping (src/views/notifications/mapping.ts) and the words for every event of
// the API (src/views/notifications/labels.ts, checked against openapi.json).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { fieldsFrom, MAX_ROWS, rowProblems, rowsFrom } from "../src/views/notifications/mapping";
import { EVENT_LABELS, EVENT_RECIPIENTS } from "../src/views/notifications/labels";
import { fieldMessage } from "../src/api/errors";

// What GET /notification-templates answers as `fits` for an activity's or a session's event.
const TEXT = ["name", "phrase", "thing"];
const FITS = { title: TEXT, time: ["date", "thing", "time"], place: TEXT, org: TEXT };

describe("a template's field mapping", () => {
  it("edits the stored mapping as rows, and one empty row when there is none", () => {
    expect(rowsFrom({ thing1: "title", time2: "time" })).toEqual([
      { key: "thing1", value: "title" }, { key: "time2", value: "time" }]);
    expect(rowsFrom({})).toEqual([{ key: "", value: "" }]);
  });

  it("sends the rows as the body's fields, keys trimmed", () => {
    expect(fieldsFrom([{ key: " thing1 ", value: "title" }, { key: "time12", value: "time" }]))
      .toEqual({ thing1: "title", time12: "time" });
  });

  it("accepts WeChat's keyword keys with values the event offers, of a kind that fits", () => {
    expect(rowProblems([{ key: "thing1", value: "title" }, { key: "time12", value: "time" },
      { key: "name3", value: "org" }, { key: "thing4", value: "time" }], FITS)).toEqual({});
  });

  it("refuses a value in a keyword of a kind it cannot fill, as the server would", () => {
    expect(rowProblems([
      { key: "character_string1", value: "org" },
      { key: "time2", value: "place" },
      { key: "phrase3", value: "time" },
      { key: "foo4", value: "title" },
    ], FITS)).toEqual({
      0: "该内容不能填入 character_string 类关键词",
      1: "该内容不能填入 time 类关键词",
      2: "该内容不能填入 phrase 类关键词",
      3: "该内容不能填入 foo 类关键词",
    });
  });

  it("says what is wrong on each row", () => {
    expect(rowProblems([
      { key: "", value: "title" },
      { key: "Thing1", value: "title" },
      { key: "thing", value: "title" },
      { key: "thing123", value: "title" },
      { key: "thing2", value: "" },
      { key: "thing3", value: "reason" },
      { key: "time4", value: "time" },
      { key: "time4", value: "time" },
    ], FITS)).toEqual({
      0: "请填写模板关键词，如 thing1",
      1: "关键词格式如 thing1、time2（小写字母加一到两位数字）",
      2: "关键词格式如 thing1、time2（小写字母加一到两位数字）",
      3: "关键词格式如 thing1、time2（小写字母加一到两位数字）",
      4: "请选择填入的内容",
      5: "此事件没有该内容",
      7: "关键词重复",
    });
    expect(MAX_ROWS).toBe(10);
  });

  it("puts the server's mapping refusals in Chinese", () => {
    expect(fieldMessage("'time' (time) cannot fill a phrase keyword.")).toBe("该内容不能填入 phrase 类关键词");
    expect(fieldMessage("session_reminder offers no value 'reason' (it offers title, time).")).toBe("此事件没有该内容");
    expect(fieldMessage("'foo1x' is not a WeChat keyword key (thing1, time2, phrase3, ...)."))
      .toBe("不是微信模板关键词（如 thing1、time2）");
  });
});

describe("the events' words", () => {
  it("names every event of the API and whom it goes to", () => {
    const doc = JSON.parse(readFileSync(new URL("../openapi.json", import.meta.url), "utf8"));
    const events: string[] = doc.components.schemas.TemplateOut.properties.event.enum;
    expect(events.length).toBe(12);
    expect(events.filter((e) => !(e in EVENT_LABELS) || !(e in EVENT_RECIPIENTS))).toEqual([]);
  });
});
