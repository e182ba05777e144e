import { createApp } from "vue";
import ElementPlus from "element-plus";
import zhCn from "element-plus/es/locale/lang/zh-cn";
import "element-plus/dist/index.css";
import "./styles.css";
import App from "./App.vue";
import { onSignedOut } from "@/api/client";
import { PATHS, router } from "./router";

// The server ended the session (a refresh was refused): back to sign-in, then back here.
onSignedOut(() => {
  const here = router.currentRoute.value;
  if (here.name !== "login") void router.replace({ path: PATHS.login, query: { redirect: here.fullPath } });
});

createApp(App).use(ElementPlus, { locale: zhCn }).use(router).mount("#app");
