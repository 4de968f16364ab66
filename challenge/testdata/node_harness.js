// Runs the challenge page's script under Node for challenge/node_test.go.
// Input (argv[2], JSON): {"script": "...", "digests": [[prefix, suffix]...],
// "puzzles": [[token, difficulty]...], "page": "<html>..."}.
// Output (stdout, JSON): {"digests": [hex...], "nonces": [string...], "pageNonce": string}.
"use strict";
const fs = require("fs");
const vm = require("vm");
const input = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = {};

// The solver on its own.
const ctx = vm.createContext({});
vm.runInContext(input.script + ";this.P = ipveilPow;", ctx);
out.digests = input.digests.map(([p, s]) => ctx.P.digest(p, s));
out.nonces = input.puzzles.map(([tok, d]) => {
  const step = ctx.P.solver(tok, d);
  let r;
  while ((r = step(1000)) === null) {}
  return r;
});

// The whole page: its one inline script against a minimal document that
// holds the form as rendered.
const html = input.page;
const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
if (scripts.length !== 1) throw new Error("want exactly one inline script, got " + scripts.length);
const attr = (re) => {
  const m = html.match(re);
  if (!m) throw new Error("page lacks " + re);
  return m[1];
};
const form = {
  action: attr(/<form id="ipveil" method="post" action="([^"]*)"/),
  elements: {
    token: { value: attr(/<input type="hidden" name="token" value="([^"]*)">/) },
    nonce: { value: attr(/<input type="hidden" name="nonce" value="([^"]*)">/) },
  },
  getAttribute(name) {
    return name === "data-difficulty" ? attr(/data-difficulty="(\d+)"/) : null;
  },
  submit() {
    out.pageNonce = this.elements.nonce.value;
    out.pageAction = this.action;
    process.stdout.write(JSON.stringify(out));
  },
};
const page = vm.createContext({
  document: { getElementById: (id) => (id === "ipveil" ? form : null) },
  setTimeout, Date,
});
vm.runInContext(scripts[0], page);
