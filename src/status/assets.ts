// The status page's only assets, served by the process itself (nothing from the internet). The
// script is small on purpose: it re-fetches the server-rendered live part (escaped on the server)
// every few seconds, with the page's own query, and pauses while the tab is hidden.

export const STATUS_CSS = `
body { font: 13px/1.4 system-ui, sans-serif; margin: 0 1.5em 2em; color: #1b1f24; background: #fff; }
header { display: flex; align-items: baseline; gap: 1.5em; }
h1 { font-size: 1.4em; margin: .6em 0 .3em; }
h2 { font-size: 1.15em; margin: 1.2em 0 .4em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1em; font-weight: normal; margin: .9em 0 .3em; }
small, #updates, .summary { color: #57606a; }
table { border-collapse: collapse; margin-bottom: .4em; }
th, td { border: 1px solid #d0d7de; padding: 2px 7px; text-align: left; vertical-align: top; white-space: nowrap; }
thead th { background: #f6f8fa; position: sticky; top: 0; }
td.why { white-space: normal; max-width: 48em; color: #424a53; }
.rtt { color: #57606a; font-size: .9em; }
.cell.reachable { color: #1a7f37; }
.cell.unreachable { background: #ffebe9; color: #cf222e; font-weight: 600; }
.cell.not-probed { color: #8c959f; }
.cell.refused { color: #8250df; }
.decision.connected { color: #1a7f37; }
.decision.restored { background: #ddf4ff; color: #0969da; font-weight: 600; }
.decision.kept-by-quorum, .decision.uncovered { background: #fff8c5; color: #7d4e00; }
.decision.held-back { background: #fff1e5; color: #bc4c00; font-weight: 600; }
.decision.disconnected, .decision.pruned { background: #ffebe9; color: #cf222e; font-weight: 600; }
.node.live { color: #1a7f37; }
.node.suspect, .node.stale, .node.other-config, .node.invalid { background: #fff8c5; color: #7d4e00; }
.event.warning { color: #bc4c00; }
form.filter { display: flex; flex-wrap: wrap; gap: .4em 1em; align-items: center; padding: .5em; background: #f6f8fa; border: 1px solid #d0d7de; }
form.filter input[type=search] { width: 11em; }
nav.pager { margin: .4em 0; }
nav.pager span { color: #8c959f; }
`;

/** Milliseconds between live updates. */
export const LIVE_INTERVAL_MS = 2000;

export const STATUS_JS = `'use strict';
(() => {
  const live = document.getElementById('live');
  const note = document.getElementById('updates');
  let busy = false;
  async function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const response = await fetch('/status/live' + location.search, { cache: 'no-store' });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      live.innerHTML = await response.text();
      note.textContent = 'live: updated ' + new Date().toLocaleTimeString();
    } catch (err) {
      note.textContent = 'live updates failing (' + err.message + '); retrying';
    } finally {
      busy = false;
    }
  }
  note.textContent = 'live: updates every ${LIVE_INTERVAL_MS / 1000} s';
  setInterval(refresh, ${LIVE_INTERVAL_MS});
  document.addEventListener('visibilitychange', refresh);
})();
`;
