/**
 * The operator console (browser side): asks for the operator token, then shows the current
 * state, the last hour's time series (uPlot), a user's view with purge, and the ladder of a
 * recent flow. Everything comes from the edge's /api; untrusted text only ever goes into
 * textContent.
 */
import uPlot from 'uplot';

interface SeriesPoint {
  t: number;
  v: Record<string, number>;
}
interface TraceEntry {
  t: number;
  callId: string;
  proto: 'SIP' | 'MSRP';
  dir: 'in' | 'out';
  peer: string;
  label: string;
  seq?: string;
}

const TOKEN_KEY = 'deferred-cpm-token';
const app = document.getElementById('app')!;
const statusLine = document.getElementById('status')!;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

class Unauthorized extends Error {}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(path, {
    ...init,
    headers: {
      authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ''}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });
  if (res.status === 401) throw new Unauthorized('operator token refused');
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(json.error ?? `HTTP ${res.status}`);
  return json;
}

function setStatus(text: string, bad = false): void {
  statusLine.textContent = text;
  statusLine.className = bad ? 'bad' : '';
}

// ---- sign-in ----------------------------------------------------------------------------------

function showLogin(message = ''): void {
  const input = el('input', { id: 'token', type: 'password', size: '40', autocomplete: 'off' });
  const form = el(
    'form',
    { id: 'login' },
    el(
      'section',
      {},
      el('h2', {}, 'Operator token'),
      el(
        'p',
        { class: 'muted' },
        'Printed by the service at start, and kept in DATA_DIR/admin-token (or ADMIN_TOKEN).',
      ),
      input,
      ' ',
      el('button', { type: 'submit', id: 'sign-in' }, 'Sign in'),
      el('p', { class: 'muted', id: 'login-error' }, message),
    ),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    void start();
  });
  app.replaceChildren(form);
  setStatus('signed out');
  input.focus();
}

// ---- state ----------------------------------------------------------------------------------

const STATE_CARDS: [string, string, (s: Record<string, unknown>) => string][] = [
  ['pending', 'pending messages', (s) => num(s.pending)],
  ['users', 'users with pending', (s) => num(s.users)],
  ['subscriptions', 'active subscriptions', (s) => num(s.subscriptions)],
  ['msrp', 'open MSRP sessions', (s) => num(s.msrpSessions)],
  [
    'queue-delivery',
    'delivery queue (messages)',
    (s) => num((s.queues as Record<string, number> | undefined)?.delivery),
  ],
  [
    'queue-outbound',
    'outbound queue (messages)',
    (s) => num((s.queues as Record<string, number> | undefined)?.outbound),
  ],
  ['store', 'store size', (s) => bytes(s.bytes)],
];

function num(v: unknown): string {
  return typeof v === 'number' ? v.toLocaleString('en') : '–';
}
function bytes(v: unknown): string {
  if (typeof v !== 'number') return '–';
  if (v < 1024) return `${v} B`;
  if (v < 1024 * 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${(v / 1024 / 1024).toFixed(1)} MiB`;
}

// ---- charts ---------------------------------------------------------------------------------

interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  series: [key: string, label: string, color: string][];
}

const COLORS = ['#0b63c5', '#16a34a', '#d97706', '#b42318', '#7c3aed', '#0891b2', '#be185d', '#4b5563', '#65a30d'];
const METHODS = ['SUBSCRIBE', 'INVITE', 'MESSAGE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'NOTIFY', 'OTHER'];

const CHARTS: ChartSpec[] = [
  {
    id: 'messages',
    title: 'Deferred messages',
    unit: 'messages per interval',
    series: [
      ['deposits', 'deposits', COLORS[0]!],
      ['deliveries', 'deliveries', COLORS[1]!],
      ['deletions', 'deletions', COLORS[2]!],
      ['expiries', 'expiries', COLORS[3]!],
    ],
  },
  {
    id: 'notify',
    title: 'NOTIFYs',
    unit: 'NOTIFYs per interval',
    series: [
      ['notify_sent', 'sent (2xx)', COLORS[1]!],
      ['notify_failed', 'failed', COLORS[3]!],
    ],
  },
  {
    id: 'requests',
    title: 'SIP requests by method',
    unit: 'requests per interval',
    series: METHODS.map((m, i) => [`sip_requests_${m}`, m, COLORS[i % COLORS.length]!]),
  },
  {
    id: 'responses',
    title: 'SIP responses by class',
    unit: 'responses per interval',
    series: [
      ['sip_responses_1xx', '1xx', COLORS[7]!],
      ['sip_responses_2xx', '2xx', COLORS[1]!],
      ['sip_responses_3xx', '3xx', COLORS[5]!],
      ['sip_responses_4xx', '4xx', COLORS[2]!],
      ['sip_responses_5xx', '5xx', COLORS[3]!],
      ['sip_responses_6xx', '6xx', COLORS[4]!],
      ['sip_shed_503', '503 shed (overload)', COLORS[6]!],
    ],
  },
  {
    id: 'latency',
    title: 'Latency',
    unit: 'milliseconds',
    series: [
      ['sip_response_p50_ms', 'SIP response p50', COLORS[0]!],
      ['sip_response_p95_ms', 'SIP response p95', COLORS[5]!],
      ['sip_response_p99_ms', 'SIP response p99', COLORS[4]!],
      ['delivery_latency_p50_ms', 'delivery p50', COLORS[1]!],
      ['delivery_latency_p99_ms', 'delivery p99', COLORS[3]!],
    ],
  },
];

class Charts {
  private readonly plots = new Map<string, uPlot>();
  private readonly totals = new Map<string, HTMLElement>();

  constructor(private readonly root: HTMLElement) {}

  update(intervalMs: number, points: SeriesPoint[]): void {
    const xs = points.map((p) => p.t / 1000);
    const every = `${Math.round(intervalMs / 1000)} s`;
    for (const spec of CHARTS) {
      const ys = spec.series.map(([key]) =>
        points.map((p) => (p.v[key] === undefined ? (spec.unit === 'milliseconds' ? null : 0) : p.v[key]!)),
      );
      const data = [xs, ...ys] as uPlot.AlignedData;
      let plot = this.plots.get(spec.id);
      if (!plot) {
        const box = el('div', { class: 'chart', id: `chart-${spec.id}` });
        const totals = el('div', { class: 'totals', id: `totals-${spec.id}` });
        this.root.append(box);
        plot = new uPlot(
          {
            title: `${spec.title} (${spec.unit}, every ${every})`,
            width: 520,
            height: 220,
            series: [{}, ...spec.series.map(([, label, stroke]) => ({ label, stroke, width: 1.5, spanGaps: true }))],
            axes: [{}, { label: spec.unit, size: 60 }],
            scales: { x: { time: true } },
          },
          data,
          box,
        );
        box.append(totals);
        this.plots.set(spec.id, plot);
        this.totals.set(spec.id, totals);
      } else plot.setData(data);
      // The last hour in numbers, under the chart: sums for counts, the latest value for latencies.
      const summary = spec.series.map(([, label], i) => {
        const values = ys[i]!.filter((v): v is number => v !== null);
        const shown =
          spec.unit === 'milliseconds'
            ? values.length > 0
              ? `${values[values.length - 1]} ms`
              : '–'
            : String(values.reduce((a, b) => a + b, 0));
        return `${label}: ${shown}`;
      });
      const totals = this.totals.get(spec.id)!;
      totals.textContent = `last hour — ${summary.join(' · ')}`;
      totals.dataset.values = JSON.stringify(
        Object.fromEntries(spec.series.map(([key], i) => [key, ys[i]!.reduce<number>((a, b) => a + (b ?? 0), 0)])),
      );
    }
  }
}

// ---- user view ------------------------------------------------------------------------------

interface UserView {
  user: string;
  total: number;
  cursor?: string;
  entries: { id: string; from: string; arrivedAt: string; expiresAt: number; contentType?: string; bytes: number }[];
  subscriptions: {
    dialogId: string;
    device: string;
    transport: string;
    address: string;
    expiresAt: string;
    notifies: number;
  }[];
  deliveries: { id: string; from: string; at: string; latencyMs: number }[];
}

function table(headers: string[], rows: (string | Node)[][], id: string): HTMLTableElement {
  return el(
    'table',
    { id },
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c))))),
  );
}

async function openUser(box: HTMLElement, user: string): Promise<void> {
  const view = await api<UserView>(`/api/user?user=${encodeURIComponent(user)}`);
  const purge = async (id?: string) => {
    const what = id ? `message ${id}` : `all ${view.total} pending messages`;
    if (!confirm(`Purge ${what} of ${user}? The senders who asked are told it failed. This cannot be undone.`)) return;
    const out = await api<{ purged: string[] }>('/api/purge', {
      method: 'POST',
      body: JSON.stringify(id ? { user, id } : { user, all: true }),
    });
    setStatus(`purged ${out.purged.length} message(s) of ${user}`);
    await openUser(box, user);
  };
  const purgeAll = el('button', { class: 'danger', id: 'purge-all' }, `Purge all (${view.total})`);
  purgeAll.addEventListener('click', () => void purge().catch(showError));
  box.replaceChildren(
    el('h3', {}, `${view.user}: ${view.total} pending`, ' ', purgeAll),
    table(
      ['id', 'from', 'arrived', 'expires', 'type', 'size', ''],
      view.entries.map((m) => {
        const b = el('button', { class: 'danger', 'data-id': m.id }, 'Purge');
        b.addEventListener('click', () => void purge(m.id).catch(showError));
        return [
          m.id,
          m.from,
          m.arrivedAt,
          new Date(m.expiresAt * 1000).toISOString(),
          m.contentType ?? '',
          bytes(m.bytes),
          b,
        ];
      }),
      'pending',
    ),
    view.cursor
      ? el('p', { class: 'muted' }, `showing the first ${view.entries.length}; the CLI pages through the rest`)
      : '',
    el('h3', {}, 'Active subscriptions and devices'),
    table(
      ['device (Contact)', 'flow', 'expires', 'NOTIFYs'],
      view.subscriptions.map((s) => [s.device, `${s.transport} ${s.address}`, s.expiresAt, String(s.notifies)]),
      'subscriptions',
    ),
    el('h3', {}, 'Recent deliveries'),
    table(
      ['id', 'from', 'delivered', 'latency (ms)'],
      view.deliveries.map((d) => [d.id, d.from, d.at, String(Math.round(d.latencyMs))]),
      'deliveries',
    ),
  );
}

// ---- ladder ---------------------------------------------------------------------------------

const SVG = 'http://www.w3.org/2000/svg';
function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** Figure 30's style: one lifeline per party, one arrow per message, time downwards. */
function drawLadder(box: HTMLElement, callId: string, messages: TraceEntry[]): void {
  const peers = [...new Set(messages.map((m) => m.peer))];
  const lanes = ['edge', ...peers];
  const laneX = (name: string) => 120 + lanes.indexOf(name) * 300;
  const rowH = 28;
  const height = 60 + messages.length * rowH;
  const width = 120 + (lanes.length - 1) * 300 + 140;
  const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' });
  const defs = svg('defs', {});
  const marker = svg('marker', { id: 'arrow', markerWidth: 10, markerHeight: 8, refX: 10, refY: 4, orient: 'auto' });
  marker.append(svg('path', { d: 'M0,0 L10,4 L0,8 z', fill: '#1d2329' }));
  defs.append(marker);
  root.append(defs);
  for (const lane of lanes) {
    const x = laneX(lane);
    const label = svg('text', { x, y: 16, 'text-anchor': 'middle', 'font-weight': 'bold' });
    label.textContent = lane === 'edge' ? 'deferred-cpm (edge)' : lane;
    root.append(label, svg('line', { x1: x, y1: 24, x2: x, y2: height, stroke: '#9aa5b1', 'stroke-dasharray': '4 3' }));
  }
  const t0 = messages[0]?.t ?? 0;
  messages.forEach((m, i) => {
    const y = 44 + i * rowH;
    const [from, to] = m.dir === 'in' ? [laneX(m.peer), laneX('edge')] : [laneX('edge'), laneX(m.peer)];
    const line = svg('line', {
      x1: from,
      y1: y,
      x2: to,
      y2: y,
      stroke: m.proto === 'MSRP' ? '#0b63c5' : '#1d2329',
      'stroke-width': 1.5,
      'marker-end': 'url(#arrow)',
      class: 'arrow',
    });
    const text = svg('text', { x: (from + to) / 2, y: y - 5, 'text-anchor': 'middle', class: 'arrow-label' });
    text.textContent = `${m.proto === 'MSRP' ? 'MSRP ' : ''}${m.label}${m.seq ? ` (${m.seq})` : ''}`;
    const time = svg('text', { x: 4, y: y + 4, fill: '#5b6670' });
    time.textContent = `+${m.t - t0} ms`;
    root.append(line, text, time);
  });
  box.replaceChildren(el('h3', {}, `Call-ID ${callId}`), root);
}

async function refreshCalls(list: HTMLElement, ladder: HTMLElement): Promise<void> {
  let calls: { callId: string; last: number; messages: number; first_label: string }[];
  try {
    calls = (await api<{ calls: typeof calls }>('/api/flows')).calls;
  } catch (err) {
    if (err instanceof Unauthorized) throw err;
    list.replaceChildren(el('li', { class: 'muted' }, 'flow trace is off (FLOW_TRACE=on keeps one)'));
    return;
  }
  list.replaceChildren(
    ...calls.map((c) => {
      const li = el(
        'li',
        { 'data-call-id': c.callId },
        `${c.first_label} — ${c.callId} (${c.messages} messages, ${new Date(c.last).toLocaleTimeString()})`,
      );
      li.addEventListener('click', () => {
        void api<{ messages: TraceEntry[] }>(`/api/flows?callId=${encodeURIComponent(c.callId)}`)
          .then((f) => drawLadder(ladder, c.callId, f.messages))
          .catch(showError);
      });
      return li;
    }),
  );
}

// ---- page -----------------------------------------------------------------------------------

function showError(err: unknown): void {
  if (err instanceof Unauthorized) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin('That token was refused.');
    return;
  }
  setStatus(`error: ${err instanceof Error ? err.message : String(err)}`, true);
}

let timer: number | undefined;

async function start(): Promise<void> {
  if (!sessionStorage.getItem(TOKEN_KEY)) return showLogin();
  window.clearInterval(timer);
  const cards = el('div', { class: 'cards', id: 'state' });
  const cells = new Map<string, HTMLElement>();
  for (const [id, label] of STATE_CARDS) {
    const v = el('div', { class: 'v', id: `state-${id}` }, '–');
    cells.set(id, v);
    cards.append(el('div', { class: 'card' }, v, el('div', { class: 'k' }, label)));
  }
  const chartBox = el('div', { class: 'charts', id: 'charts' });
  const userInput = el('input', { id: 'user', placeholder: 'sip:alice@example.com', size: '36' });
  const userBox = el('div', { id: 'user-view' });
  const userForm = el('form', {}, userInput, ' ', el('button', { type: 'submit', id: 'open-user' }, 'Open'));
  userForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (userInput.value.trim()) void openUser(userBox, userInput.value.trim()).catch(showError);
  });
  const calls = el('ul', { id: 'calls' });
  const ladder = el('div', { id: 'ladder' });
  const refreshFlows = el('button', { id: 'refresh-flows' }, 'Refresh');
  refreshFlows.addEventListener('click', () => void refreshCalls(calls, ladder).catch(showError));
  const signOut = el('button', { id: 'sign-out' }, 'Sign out');
  signOut.addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    window.clearInterval(timer);
    showLogin();
  });
  app.replaceChildren(
    el(
      'main',
      {},
      el('section', {}, el('h2', {}, 'Now'), cards),
      el('section', {}, el('h2', {}, 'Last hour'), chartBox),
      el('section', {}, el('h2', {}, 'User'), userForm, userBox),
      el('section', {}, el('h2', {}, 'Recent flows (ladder)'), refreshFlows, calls, ladder),
      el('p', {}, signOut),
    ),
  );
  const charts = new Charts(chartBox);
  const refresh = async () => {
    const [state, series] = await Promise.all([
      api<Record<string, unknown>>('/api/stats'),
      api<{ intervalMs: number; points: SeriesPoint[] }>('/api/series'),
    ]);
    for (const [id, , read] of STATE_CARDS) cells.get(id)!.textContent = read(state);
    charts.update(series.intervalMs, series.points);
    setStatus(`${String(state.mode)} mode · updated ${new Date().toLocaleTimeString()}`);
  };
  try {
    await refresh();
    await refreshCalls(calls, ladder);
  } catch (err) {
    return showError(err);
  }
  timer = window.setInterval(() => void refresh().catch(showError), 2000);
}

void start();
