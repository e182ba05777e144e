// Start-up. Element Plus components are imported on demand per page (vite.config.ts); what is used
// from scripts (messages, message boxes, the loading service) is installed here with its CSS, and the
// zh-cn locale is provided to the whole app, also to message boxes, which mount outside the page tree.
import { createApp } from "vue";
import { ElLoading, ElMessage, ElMessageBox, ElNotification, provideGlobalConfig } from "element-plus";
import zhCn from "element-plus/es/locale/lang/zh-cn";
import "element-plus/theme-chalk/base.css";
import "element-plus/theme-chalk/el-message.css";
import "element-plus/theme-chalk/el-message-box.css";
import "element-plus/theme-chalk/el-loading.css";
import "element-plus/theme-chalk/el-notification.css";
import "element-plus/theme-chalk/el-overlay.css";
import "./styles.css";
import App from "./App.vue";
import { onSignedOut } from "@/api/client";
import { keeper } from "@/auth/session";
import { PATHS, router } from "./router";

// Signed out by the server (a refresh refused), in another tab, or here: back to sign-in, then back here.
function toSignIn(): void {
  const here = router.currentRoute.value;
  if (here.name === "login" || here.name === "no-access") return; // those pages go on by themselves
  const back = !here.meta.public && here.fullPath !== "/";
  void router.replace({ path: PATHS.login, query: back ? { redirect: here.fullPath } : {} });
}
onSignedOut(toSignIn);
keeper.onChange((tokens) => {
  if (!tokens) toSignIn();
});

const app = createApp(App);
provideGlobalConfig({ locale: zhCn }, app, true);
app.use(ElMessage).use(ElMessageBox).use(ElLoading).use(ElNotification).use(router).mount("#app");
