/**
 * The local operator dashboard: one static page that polls /api/stats. The AWS deployment's
 * dashboard is the CloudWatch one the CDK app builds from the same metric names.
 */
export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Deferred messages — edge</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 2rem; color: #222; }
  h1 { font-size: 1.3rem; }
  table { border-collapse: collapse; margin: 1rem 0; min-width: 28rem; }
  th, td { text-align: left; padding: .25rem .75rem; border-bottom: 1px solid #ddd; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  #updated { color: #666; }
</style>
</head>
<body>
<h1>Deferred messages — edge</h1>
<p id="updated">loading…</p>
<h2>Gauges</h2><table id="gauges"><tbody></tbody></table>
<h2>Latency</h2><table id="quantiles"><tbody></tbody></table>
<h2>Counters</h2><table id="counters"><tbody></tbody></table>
<script>
function fill(id, obj) {
  const body = document.querySelector('#' + id + ' tbody');
  body.replaceChildren(...Object.keys(obj).sort().map((k) => {
    const tr = document.createElement('tr');
    const name = document.createElement('td'); name.textContent = k;
    const value = document.createElement('td'); value.className = 'n'; value.textContent = String(obj[k]);
    tr.append(name, value);
    return tr;
  }));
}
async function refresh() {
  try {
    const stats = await (await fetch('/api/stats')).json();
    fill('gauges', stats.gauges); fill('quantiles', stats.quantiles); fill('counters', stats.counters);
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById('updated').textContent = 'edge unreachable: ' + e;
  }
}
refresh(); setInterval(refresh, 2000);
</script>
</body>
</html>
`;
}
