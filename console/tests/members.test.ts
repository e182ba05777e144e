import { describe, expect, it } from "vitest";
import { EMPTY_FILTER, isFiltering, memberQuery } from "../src/views/members/memberFilter";
import { importType, rowMessage, TEMPLATE_HEADERS, templateCsv } from "../src/views/members/importRows";

describe("member search and filters", () => {
  it("sends nothing for blank fields", () => {
    expect(memberQuery(EMPTY_FILTER)).toEqual({});
    expect(memberQuery({ ...EMPTY_FILTER, q: "  ", tag: " " })).toEqual({});
    expect(isFiltering(memberQuery(EMPTY_FILTER))).toBe(false);
  });

  it("sends the API's parameters, trimmed, with 在册/已停用 as active=true/false", () => {
    expect(memberQuery({ q: " 139 0000 0001 ", partyStatus: "probationary", active: "inactive", tag: " youth " }))
      .toEqual({ q: "139 0000 0001", party_status: "probationary", active: false, tag: "youth" });
    expect(memberQuery({ ...EMPTY_FILTER, active: "active" })).toEqual({ active: true });
    expect(isFiltering(memberQuery({ ...EMPTY_FILTER, active: "active" }))).toBe(true);
  });
});

describe("member import", () => {
  it("sends CSV and xlsx with their types and refuses anything else", () => {
    expect(importType({ name: "成员.CSV" })).toBe("text/csv");
    expect(importType({ name: "成员.xlsx" })).toBe("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    expect(importType({ name: "成员.xls" })).toBeNull();
  });

  it("makes a template of the importer's Chinese headers, UTF-8 with a BOM", async () => {
    const bytes = new Uint8Array(await templateCsv().arrayBuffer());
    expect([...bytes.slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(new TextDecoder().decode(bytes.slice(3))).toBe(`${TEMPLATE_HEADERS.join(",")}\r\n`);
  });

  // The messages server/member_import.py really writes (msgspec's, and its own `code: detail`).
  it.each([
    ["Expected `str` of length >= 1 - at `$.name`", "姓名：必填"],
    ["Expected `str` of length >= 6 - at `$.phone`", "手机号：应为 6 到 15 位数字"],
    ["A phone number is 6 to 15 digits with an optional leading +.", "手机号：应为 6 到 15 位数字"],
    ["Invalid enum value 'x' - at `$.gender`", "性别：应为“男”或“女”"],
    ["Invalid RFC3339 encoded date - at `$.birth_date`", "出生日期：格式应为 YYYY-MM-DD"],
    ["Invalid enum value '团员' - at `$.party_status`", "政治面貌：应为“正式党员”“预备党员”或“群众”"],
    ["Expected `str` of length <= 100 - at `$.name`", "姓名：最多 100 个字符"],
    ["Expected `str` of length <= 40 - at `$.tags[0]`", "标签：最多 40 个字符"],
    ["Object missing required field `gender`", "性别：必填"],
    ["phone_taken: another member has this phone", "手机号已被其他成员使用"],
    ["forbidden: This needs the organiser role", "无权修改该成员（其角色高于您的权限）"],
    ["something new", "填写有误"],
  ])("says %s in Chinese", (message, chinese) => {
    expect(rowMessage(message)).toBe(chinese);
  });
});
