// `make css`: Bulma cut down to what the portal's pages use, into bulma.portal.min.css.
//
// The full Bulma (678 kB, 65 kB compressed) is mostly colour shades and helpers the portal never
// names; a phone parses all of it before it paints. PurgeCSS keeps each rule whose classes and
// elements appear in the templates, the scripts or the Python that writes class names, and each
// custom property a kept rule (or portal.css) reads. tests/e2e/test_trimmed_bulma.py checks that
// the dashboard's every element has the same computed style with either file, and
// tests/test_operations.py that this file is what this script writes from today's sources.
//
//   node scripts/trim_bulma.mjs          write the file
//   node scripts/trim_bulma.mjs --check  exit 1 when the file differs from what it would write
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// PurgeCSS is pinned in the browser suite's lockfile (tests/e2e), which `make test` installs.
const require = createRequire(join(root, "tests", "e2e", "package.json"));
const { PurgeCSS } = require("purgecss");

const vendor = join(root, "portal", "static", "vendor", "bulma-1.0.4");
const source = join(vendor, "bulma.min.css");
const target = join(vendor, "bulma.portal.min.css");
const portalCss = join(root, "portal", "static", "css", "portal.css");

const results = await new PurgeCSS().purge({
  // portal.css is read for the custom properties it uses; only Bulma's result is written.
  css: [source, portalCss],
  content: [
    join(root, "portal", "templates", "**", "*.html"),
    join(root, "portal", "static", "js", "*.js"),
    join(root, "portal", "**", "*.py"),
  ],
  variables: true,
  keyframes: true,
  fontFace: true,
});
const trimmed = results.find((result) => result.file === source).css;
const header = "/* Bulma 1.0.4 (MIT), cut to the portal's use by scripts/trim_bulma.mjs from bulma.min.css. */\n";
const text = header + trimmed + "\n";

if (process.argv.includes("--check")) {
  const current = readFileSync(target, "utf8");
  if (current !== text) {
    console.error(`${target} is out of date: run \`make css\``);
    process.exit(1);
  }
  console.log("bulma.portal.min.css is up to date");
} else {
  writeFileSync(target, text);
  console.log(`wrote ${target} (${text.length} bytes)`);
}
