// The explorer's build: served by every validator under /explorer/ from files embedded in the
// binary (explorer/build.rs runs this build into Cargo's OUT_DIR).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/explorer/",
  build: {
    outDir: process.env.EXPLORER_OUT ?? "dist",
    emptyOutDir: true,
    // No source maps in the binary; one CSS file.
    sourcemap: false,
    chunkSizeWarningLimit: 2048,
  },
});
