// How the audit log reads (src/views/audit/auditFormat.ts): the action in Chinese, what changed as rows
// of 字段: 之前 → 之后 in words, and the details in a line each.
import { describe, expect, it } from "vitest";
import { actionLabel, changeRows, detailLines, valueText } from "../src/views/audit/auditFormat";

const names = { org: (id: string) => ({ b1: "第一支部", root: "机关党委" })[id] ?? "未知组织" };

describe("the audit log's words", () => {
  it("names every action the server records, and keeps an unknown one as it is", () => {
    expect(actionLabel("member.update")).toBe("编辑成员");
    expect(actionLabel("member.anonymise")).toBe("匿名化成员");
    expect(actionLabel("study.warning.closed")).toBe("预警销号");
    expect(actionLabel("something.new")).toBe("something.new");
  });

  it("shows an edit of a member as the fields that changed, in words", () => {
    const rows = changeRows({
      action: "member.update", target_kind: "member",
      before: { name: "李明", phone: "138****0001", org_id: "root", party_status: "probationary", tags: [] },
      after: { name: "李小明", phone: "139****0002", org_id: "b1", party_status: "full", tags: ["青年"] },
    }, names);
    expect(rows).toEqual([
      { field: "姓名", before: "李明", after: "李小明" },
      { field: "手机号", before: "138****0001", after: "139****0002" },
      { field: "所属组织", before: "机关党委", after: "第一支部" },
      { field: "政治面貌", before: "预备党员", after: "正式党员" },
      { field: "标签", before: "无", after: "青年" },
    ]);
  });

  it("leaves out a field given on both sides unchanged, and says deactivation as 在册 → 已停用", () => {
    expect(changeRows({ action: "member.deactivate", target_kind: "member",
      before: { active: true, name: "王芳" }, after: { active: false, name: "王芳" } }, names))
      .toEqual([{ field: "状态", before: "在册", after: "已停用" }]);
  });

  it("shows a creation with its values only", () => {
    expect(changeRows({ action: "member.create", target_kind: "member", before: null,
      after: { name: "赵强", org_id: "b1" } }, names))
      .toEqual([{ field: "姓名", before: null, after: "赵强" }, { field: "所属组织", before: null, after: "第一支部" }]);
  });

  it("reads roles, attendance marks and statuses by what they are about", () => {
    expect(changeRows({ action: "member.roles", target_kind: "member", before: [],
      after: [{ role: "organiser", org_id: "b1" }, { role: "admin", org_id: "root" }] }, names))
      .toEqual([{ field: "角色", before: "无", after: "组织员（第一支部）、管理员（机关党委）" }]);
    expect(changeRows({ action: "study.attendance.mark", target_kind: "member", before: null, after: "late" }, names))
      .toEqual([{ field: "出勤", before: "未记录", after: "迟到" }]);
    expect(changeRows({ action: "study.warning.rectifying", target_kind: "study_warning",
      before: { status: "open" }, after: { status: "rectifying" } }, names))
      .toEqual([{ field: "状态", before: "待整改", after: "整改中" }]);
    expect(changeRows({ action: "suggestion.reply", target_kind: "suggestion",
      before: { status: "open" }, after: { status: "answered" } }, names))
      .toEqual([{ field: "状态", before: "待回复", after: "已回复" }]);
  });

  it("says an org setting that was never set as inherited", () => {
    expect(changeRows({ action: "org.settings", target_kind: "org", before: { member_warnings: null },
      after: { member_warnings: true } }, names))
      .toEqual([{ field: "成员预警", before: "未单独设置（沿用上级）", after: "开启" }]);
    expect(valueText("member_warnings", false, "org", names)).toBe("关闭");
  });

  it("shows a scheme's tracks by name, and nothing for an entry without values", () => {
    expect(changeRows({ action: "study.scheme.delete", target_kind: "org",
      before: { name: "四个五", tracks: [{ key: "party_lecture", name: "党课" }, { key: "x", name: "读书" }] },
      after: null }, names))
      .toEqual([{ field: "制度名称", before: "四个五", after: null },
        { field: "学习项目", before: "党课、读书", after: null }]);
    expect(changeRows({ action: "member.invite", target_kind: "member", before: null, after: null }, names)).toEqual([]);
  });

  it("writes the details a line each, leaving out the ids the page links itself", () => {
    expect(detailLines({ fields: ["title", "starts_at"], promoted: ["m1", "m2"] }))
      .toEqual(["修改：标题、开始时间", "候补递补 2 人"]);
    expect(detailLines({ wiped: ["name", "phone", "wechat"] })).toEqual(["已清除：姓名、手机号、微信绑定"]);
    expect(detailLines({ session_id: "s1", kind: "leave", decision: "approved", request_id: "r1" }))
      .toEqual(["类型：请假"]);
    expect(detailLines({ period: "2026-11", track: "self_study", member_id: "m1", org_id: "b1" }))
      .toEqual(["周期：2026-11", "学习项目：个人自学"]);
    expect(detailLines({})).toEqual([]);
  });
});
