// A busy state for an action (console issue item 9): `busy` for a button's :loading, a full-page
// overlay with a text for long ones (imports, exports, scans), and the API's refusal shown in Chinese.
//
//   const { busy, problem, fields, run } = useBusy();
//   const result = await run(() => api.post(...), { overlay: "正在导入…", success: "导入完成" });
//   if (result === undefined) return;   // refused: the message was shown, `fields` holds field errors
import { computed, ref, shallowRef } from "vue";
import { ElLoading, ElMessage } from "element-plus";
import { ApiProblem, fieldErrors, problemMessage } from "@/api/errors";

export interface RunOptions {
  /** Show a full-page overlay with this text while the action runs (for actions that take seconds). */
  overlay?: string;
  /** A message shown when the action succeeded. */
  success?: string;
  /** Do not show the refusal as a message (the page shows it itself, from `problem`). */
  quiet?: boolean;
  /** Server field names → form props, where they differ (see fieldErrors). */
  aliases?: Record<string, string>;
}

/** The overlay appears only for actions that take longer than this, so quick ones do not flash. */
const OVERLAY_DELAY_MS = 300;

export function showProblem(error: unknown): void {
  ElMessage.error({ message: error instanceof ApiProblem ? problemMessage(error) : "操作失败，请重试。", grouping: true });
}

export function useBusy() {
  const busy = ref(false);
  const problem = shallowRef<ApiProblem | null>(null);
  const fields = ref<Record<string, string>>({});

  async function run<T>(work: () => Promise<T>, options: RunOptions = {}): Promise<T | undefined> {
    busy.value = true;
    problem.value = null;
    fields.value = {};
    let overlay: ReturnType<typeof ElLoading.service> | null = null;
    const timer = options.overlay
      ? setTimeout(() => { overlay = ElLoading.service({ lock: true, text: options.overlay }); }, OVERLAY_DELAY_MS)
      : null;
    try {
      const result = await work();
      if (options.success) ElMessage.success(options.success);
      return result;
    } catch (error) {
      if (!(error instanceof ApiProblem)) throw error; // a bug, not a refusal: let it surface
      problem.value = error;
      fields.value = fieldErrors(error, options.aliases);
      if (!options.quiet) showProblem(error);
      return undefined;
    } finally {
      if (timer) clearTimeout(timer);
      (overlay as ReturnType<typeof ElLoading.service> | null)?.close();
      busy.value = false;
    }
  }

  return { busy, problem, fields, message: computed(() => (problem.value ? problemMessage(problem.value) : "")), run };
}

/** A form's refusal: its field errors (for the form to show on the fields), and a message only when none. */
export function formRefusal(error: unknown, aliases?: Record<string, string>): Record<string, string> {
  if (!(error instanceof ApiProblem) || !error.errors.length) ElMessage.error(problemMessage(error as ApiProblem));
  return fieldErrors(error, aliases);
}
