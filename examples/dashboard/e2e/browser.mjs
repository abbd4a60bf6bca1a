// What the dashboard's browser tests share: their environment, Debian's
// chromium launched the way this machine needs (no browser download, no
// background networking), `check`, and `run`, which gives a test a fresh
// browser context, fails it on any page or console error or any
// Content-Security-Policy violation of any of its pages, reports the
// outcome and cleans up.
// Env: DASHBOARD_URL (required), ARTIFACTS (screenshot directory),
// CHROMIUM (browser path, default /usr/bin/chromium).

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const url = process.env.DASHBOARD_URL;
if (!url) throw new Error("DASHBOARD_URL is not set");
const artifacts = process.env.ARTIFACTS || "artifacts";
mkdirSync(artifacts, { recursive: true });

/** The path of a screenshot (or other artifact) called `name`. */
export const artifact = name => join(artifacts, name);

export function check(cond, what) {
  if (!cond) throw new Error("assertion failed: " + what);
  console.log("ok - " + what);
}

/** Runs `test(context)` in a fresh headless Chromium as test `name`. */
export async function run(name, test) {
  const failures = [];
  const profile = mkdtempSync(join(tmpdir(), "ipvtl-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--disable-sync", "--no-first-run", "--disable-quic",
    ],
    viewport: { width: 1280, height: 900 },
  });
  // Every page records Content-Security-Policy violations from its first
  // script on; none may happen (checked at the end, on every open page).
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", e =>
      window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline")));
  });
  context.on("page", page => {
    page.on("pageerror", e => failures.push("page error: " + e.message));
    page.on("console", m => { if (m.type() === "error") failures.push("console error: " + m.text()); });
  });
  try {
    await test(context);
    for (const page of context.pages()) {
      const violations = await page.evaluate(() => window.__cspViolations || []).catch(() => []);
      check(violations.length === 0, "no Content-Security-Policy violation on " + page.url() +
        (violations.length ? ": " + violations.join("; ") : ""));
    }
    check(failures.length === 0, "no page or console errors" + (failures.length ? ": " + failures.join("; ") : ""));
    console.log(name + " passed");
  } catch (e) {
    console.error(name + " FAILED: " + e.message);
    if (failures.length) console.error(failures.join("\n"));
    process.exitCode = 1;
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
