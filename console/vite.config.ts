/// <reference types="vitest/config" />
// Vite builds the console into dist/, served by `python -m server` at /console/ (handlers/console.py).
// index.html is the console, docs.html the API reference at /docs; each route of the console is its own
// chunk (lazy imports in src/router.ts), and every asset name carries its content hash, which is why
// the server may cache assets/ for a year.
import { fileURLToPath, URL } from "node:url";
import vue from "@vitejs/plugin-vue";
import Components from "unplugin-vue-components/vite";
import { ElementPlusResolver } from "unplugin-vue-components/resolvers";
import { defineConfig, type Plugin } from "vite";

const BASE = "/console/";

/** The head both pages share (index.html the console, docs.html the API reference), written once here. */
function sharedHead(): Plugin {
  return {
    name: "branchline-shared-head",
    transformIndexHtml: () => [
      { tag: "meta", attrs: { charset: "utf-8" }, injectTo: "head-prepend" },
      { tag: "meta", attrs: { name: "viewport", content: "width=device-width, initial-scale=1" },
        injectTo: "head-prepend" },
      { tag: "link", attrs: { rel: "icon", href: `${BASE}favicon.svg`, type: "image/svg+xml" },
        injectTo: "head-prepend" },
    ],
  };
}

export default defineConfig({
  base: BASE,
  plugins: [
    vue(),
    sharedHead(),
    // Element Plus on demand: each <el-*> a page uses (and v-loading) is imported with its CSS into that
    // page's chunk, so the sign-in page does not download the tables and date pickers. Template types
    // come from element-plus/global (tsconfig), so no generated components.d.ts.
    Components({ resolvers: [ElementPlusResolver({ importStyle: "css" })], dts: false, dirs: [] }),
  ],
  resolve: {
    alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    // The console never runs an inline script (CSP script-src 'self'): no inlined modulepreload polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    // The largest chunk is Swagger UI (docs.html, loaded only at /docs): about 1.5 MB before gzip.
    chunkSizeWarningLimit: 1600,
    rollupOptions: {
      input: {
        console: fileURLToPath(new URL("./index.html", import.meta.url)),
        docs: fileURLToPath(new URL("./docs.html", import.meta.url)),
      },
      output: {
        entryFileNames: "assets/[name]-[hash].js",
        chunkFileNames: "assets/[name]-[hash].js",
        assetFileNames: "assets/[name]-[hash][extname]",
      },
    },
  },
  server: {
    // `npm run dev` against a local `python -m server`.
    proxy: {
      "/api": "http://127.0.0.1:8000",
      "/openapi.json": "http://127.0.0.1:8000",
    },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
