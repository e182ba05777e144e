// "返回" on a page opened from a link or a bookmark has no page of ours to go back to: go to `fallback`.
import type { Router } from "vue-router";

export function goBack(router: Router, fallback: string): void {
  if (window.history.state?.back) router.back();
  else void router.push(fallback);
}
