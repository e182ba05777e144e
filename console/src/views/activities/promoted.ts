// After a capacity change: say who moved from the waitlist into the confirmed list, by name.
import { ElMessage, ElMessageBox } from "element-plus";
import type { RosterEntry } from "@/composables/useActivities";

export async function tellPromoted(promoted: RosterEntry[]): Promise<void> {
  if (!promoted.length) {
    ElMessage.success("已保存，没有候补成员递补。");
    return;
  }
  const names = promoted.map((e) => e.name).join("、");
  await ElMessageBox.alert(`名额增加后，以下 ${promoted.length} 名候补成员已递补为已确认：${names}。系统已通知他们。`,
    "候补递补", { confirmButtonText: "知道了", type: "success" }).catch(() => undefined);
}
