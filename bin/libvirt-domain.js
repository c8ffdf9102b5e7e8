#!/usr/bin/env node
// The `libvirt-domain` command; the implementation is compiled TypeScript (npm run build).
"use strict";
require("../dist/provider/cli/main.js").run();
