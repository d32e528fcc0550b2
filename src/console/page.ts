/**
 * The operator console's page and style sheet, as served at `/console` and
 * `/console/assets/console.css`. Plain HTML that reads without the style sheet: landmarks,
 * headings per section, labelled controls, live regions for what changes (connection, calls,
 * results). The ids are what the browser code (./web/console.ts) fills in.
 */

/** The page (`GET /console`). Loads only its own script and style sheet from the engine. */
export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <title>Operator console</title>
    <link rel="stylesheet" href="/console/assets/console.css" />
    <script type="module" src="/console/assets/console.js"></script>
  </head>
  <body>
    <header>
      <h1>Operator console <span id="operator-extension"></span></h1>
      <p id="connection" role="status" aria-live="polite">Loading…</p>
    </header>
    <main>
      <section id="presence" aria-labelledby="presence-title">
        <h2 id="presence-title">My state</h2>
        <p>Phone: <strong id="phone-state">unknown</strong> <span id="phone-since"></span></p>
        <p>
          <label for="status-select">Status</label>
          <select id="status-select" name="status" disabled>
            <option value="available">Available</option>
            <option value="break">On a break</option>
            <option value="dnd">Do not disturb</option>
          </select>
        </p>
        <p id="status-message" role="status" aria-live="polite"></p>
      </section>
      <section id="calls-now" aria-labelledby="calls-now-title">
        <h2 id="calls-now-title">Current calls</h2>
        <div id="call-cards" aria-live="assertive"></div>
        <p id="no-call">No call right now.</p>
      </section>
      <section id="dial" aria-labelledby="dial-title">
        <h2 id="dial-title">Call a number</h2>
        <form id="dial-form">
          <label for="dial-number">Number to call</label>
          <input id="dial-number" name="number" type="tel" autocomplete="off" required maxlength="64" />
          <button type="submit" disabled>Call</button>
        </form>
        <p id="dial-message" role="status" aria-live="polite"></p>
      </section>
      <section id="history" aria-labelledby="history-title">
        <h2 id="history-title">Recent calls</h2>
        <p><button type="button" id="history-refresh">Refresh</button></p>
        <table>
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Direction</th>
              <th scope="col">Number</th>
              <th scope="col">Customer</th>
              <th scope="col">Outcome</th>
              <th scope="col">Talk</th>
              <th scope="col">Recording</th>
            </tr>
          </thead>
          <tbody id="history-body"></tbody>
        </table>
        <p id="history-message" role="status" aria-live="polite"></p>
      </section>
    </main>
    <noscript><p>The operator console needs JavaScript.</p></noscript>
  </body>
</html>
`;

/** The style sheet (`GET /console/assets/console.css`): system fonts, high contrast. */
export const CONSOLE_CSS = `:root {
  color-scheme: light;
  --ink: #1a1a1a;
  --muted: #555;
  --line: #c8c8c8;
  --accent: #0b5cad;
  --ring: #fff4cc;
  --ring-edge: #b58100;
  --talk: #e6f4ea;
  --talk-edge: #1e7b34;
}
* { box-sizing: border-box; }
body {
  margin: 0 auto;
  max-width: 60rem;
  padding: 1rem;
  font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink);
  background: #fff;
}
header { display: flex; flex-wrap: wrap; align-items: baseline; justify-content: space-between; gap: 0.5rem; border-bottom: 2px solid var(--line); }
h1 { font-size: 1.4rem; margin: 0.3rem 0; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 0.4rem; }
h3 { font-size: 1.05rem; margin: 0 0 0.3rem; }
#connection { margin: 0.3rem 0; color: var(--muted); }
#connection[data-state="live"] { color: var(--talk-edge); }
#connection[data-state="waiting"], #connection[data-state="offline"], #connection[data-state="expired"], #connection[data-state="refused"] { color: #a40000; font-weight: 600; }
#phone-state[data-state="ringing"] { color: var(--ring-edge); }
#phone-state[data-state="on_call"] { color: var(--talk-edge); }
#phone-state[data-state="offline"] { color: #a40000; }
#phone-since { color: var(--muted); }
.call-card { border: 2px solid var(--line); border-radius: 6px; padding: 0.7rem 1rem; margin: 0.5rem 0; }
.call-card.ringing { background: var(--ring); border-color: var(--ring-edge); }
.call-card.dialing { border-color: var(--accent); }
.call-card.on-call { background: var(--talk); border-color: var(--talk-edge); }
.call-card dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; margin: 0.3rem 0; }
.call-card dt { color: var(--muted); }
.call-card dd { margin: 0; font-weight: 600; }
.call-card .number { font-size: 1.3rem; letter-spacing: 0.02em; }
.talk-timer { font-variant-numeric: tabular-nums; font-weight: 600; }
a { color: var(--accent); }
label { margin-right: 0.5rem; }
input, select, button { font: inherit; padding: 0.25rem 0.5rem; }
button { cursor: pointer; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-weight: 600; }
audio { height: 2rem; max-width: 16rem; }
`;
