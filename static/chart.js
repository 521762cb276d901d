// Charts: progressive enhancement of the server-rendered SVG charts (being built).
"use strict";
