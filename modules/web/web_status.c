/* SPDX-License-Identifier: MIT */
/*
 * modules/web/web_status.c - the status page: `/` (static HTML),
 * `/status.js` (fills it in and refreshes it every few seconds, draws the
 * messages-per-minute chart as SVG; no CDN, nothing inline, so the page's
 * Content-Security-Policy allows no inline script) and `/status.json`,
 * the numbers, read from the same places as `satchelctl status`: the
 * sessions and the queue through the core's metric registry, the modules
 * of the running configuration. Loop thread.
 */
#include "web_int.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct status_nums {
	double sessions;
	double limit;			/* NAN: no limit family value         */
	double queue_messages, queue_deferred, queue_oldest;
	double auth_failures, accepted, bounced, deferred, started;
	double delivered_local, delivered_remote;
	struct web_buf by_protocol;	/* JSON object members               */
	struct web_buf limit_hits;	/* JSON object members               */
};

static double
sum(const struct sc_metric_family *f)
{
	double t = 0;

	for (size_t i = 0; i < f->n; i++)
		t += f->values[i];
	return t;
}

static void
json_members(struct web_buf *b, const struct sc_metric_family *f)
{
	for (size_t i = 0; i < f->n; i++) {
		if (b->len > 0)
			web_buf_puts(b, ", ");
		web_buf_json(b, f->label_values[i]);
		web_buf_printf(b, ": %.0f", f->values[i]);
	}
}

static void
take(const struct sc_metric_family *f, void *data)
{
	struct status_nums *s = data;
	const char *n = f->name;

	if (strcmp(n, "satchel_connections_current") == 0) {
		s->sessions = sum(f);
		json_members(&s->by_protocol, f);
	} else if (strcmp(n, "satchel_connections_limit") == 0 && f->n > 0) {
		s->limit = f->values[0];
	} else if (strcmp(n, "satchel_queue_messages") == 0) {
		s->queue_messages = sum(f);
	} else if (strcmp(n, "satchel_queue_deferred_recipients") == 0) {
		s->queue_deferred = sum(f);
	} else if (strcmp(n, "satchel_queue_oldest_deferred_seconds") == 0) {
		s->queue_oldest = sum(f);
	} else if (strcmp(n, "satchel_auth_failures_total") == 0) {
		s->auth_failures = sum(f);
	} else if (strcmp(n, "satchel_messages_accepted_total") == 0) {
		s->accepted = sum(f);
	} else if (strcmp(n, "satchel_messages_bounced_total") == 0) {
		s->bounced = sum(f);
	} else if (strcmp(n, "satchel_messages_deferred_total") == 0) {
		s->deferred = sum(f);
	} else if (strcmp(n, "satchel_start_time_seconds") == 0) {
		s->started = sum(f);
	} else if (strcmp(n, "satchel_limit_hits_total") == 0) {
		json_members(&s->limit_hits, f);
	} else if (strcmp(n, "satchel_messages_delivered_total") == 0) {
		for (size_t i = 0; i < f->n; i++) {
			if (strcmp(f->label_values[i], "local") == 0)
				s->delivered_local = f->values[i];
			else if (strcmp(f->label_values[i], "remote") == 0)
				s->delivered_remote = f->values[i];
		}
	}
}

/* put_history - the last hour of counter name, per minute, as an array */
static double
put_history(struct web_buf *b, const char *name)
{
	double v[SC_METRIC_HISTORY_MINUTES], t = 0;
	size_t n = sc_metric_history(name, v, SC_METRIC_HISTORY_MINUTES);

	web_buf_puts(b, "[");
	for (size_t i = 0; i < n; i++) {
		web_buf_printf(b, "%s%.0f", i ? ", " : "", v[i]);
		t += v[i];
	}
	web_buf_puts(b, "]");
	return t;
}

static void
put_module(const struct sc_instance_info *i, void *data)
{
	struct web_buf *b = data;

	if (b->s != NULL && b->s[b->len - 1] == '}')
		web_buf_puts(b, ", ");
	web_buf_puts(b, "{\"instance\": ");
	web_buf_json(b, i->instance);
	web_buf_puts(b, ", \"module\": ");
	web_buf_json(b, i->module);
	web_buf_puts(b, ", \"version\": ");
	web_buf_json(b, i->version);
	web_buf_puts(b, "}");
}

void
web_status_json(struct web_inst *wi, struct web_reply *r)
{
	struct status_nums s = { .limit = NAN };
	struct web_buf *b = &r->body, mods = { 0 };
	time_t now = time(NULL);
	double hits_hour, auth_hour;

	sc_metrics_collect(take, &s);
	r->status = 200;
	r->type = "application/json";
	web_buf_puts(b, "{\"version\": ");
	web_buf_json(b, SC_VERSION);
	web_buf_puts(b, ", \"hostname\": ");
	web_buf_json(b, sc_config_hostname());
	web_buf_printf(b, ", \"pid\": %ld, \"uptime_seconds\": %.0f, "
		       "\"time\": %lld", (long)getpid(),
		       s.started > 0 ? (double)now - s.started : 0,
		       (long long)now);
	web_buf_printf(b, ", \"sessions\": %.0f, \"sessions_by_protocol\": "
		       "{%s}", s.sessions, s.by_protocol.s != NULL ?
		       s.by_protocol.s : "");
	if (isnan(s.limit) || isinf(s.limit))
		web_buf_puts(b, ", \"connections_limit\": null");
	else
		web_buf_printf(b, ", \"connections_limit\": %.0f", s.limit);
	web_buf_printf(b, ", \"queue\": {\"messages\": %.0f, "
		       "\"deferred_recipients\": %.0f, "
		       "\"oldest_deferred_seconds\": %.0f}",
		       s.queue_messages, s.queue_deferred, s.queue_oldest);
	web_buf_printf(b, ", \"messages\": {\"accepted\": %.0f, "
		       "\"delivered_local\": %.0f, \"delivered_remote\": "
		       "%.0f, \"deferred\": %.0f, \"bounced\": %.0f}",
		       s.accepted, s.delivered_local, s.delivered_remote,
		       s.deferred, s.bounced);
	web_buf_puts(b, ", \"accepted_per_minute\": ");
	(void)put_history(b, "satchel_messages_accepted_total");
	web_buf_puts(b, ", \"auth_failures_per_minute\": ");
	auth_hour = put_history(b, "satchel_auth_failures_total");
	web_buf_puts(b, ", \"limit_hits_per_minute\": ");
	hits_hour = put_history(b, "satchel_limit_hits_total");
	web_buf_printf(b, ", \"auth_failures\": {\"total\": %.0f, "
		       "\"last_hour\": %.0f}", s.auth_failures, auth_hour);
	web_buf_printf(b, ", \"limit_hits\": {\"by_limit\": {%s}, "
		       "\"last_hour\": %.0f}", s.limit_hits.s != NULL ?
		       s.limit_hits.s : "", hits_hour);
	sc_config_instances(wi->inst, put_module, &mods);
	web_buf_printf(b, ", \"modules\": [%s]}\n", mods.s != NULL ?
		       mods.s : "");
	if (s.by_protocol.failed || s.limit_hits.failed || mods.failed)
		b->failed = true;
	web_buf_free(&s.by_protocol);
	web_buf_free(&s.limit_hits);
	web_buf_free(&mods);
}

static const char page[] =
"<!DOCTYPE html>\n"
"<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
"<title>satchel status</title>\n"
"<link rel=\"icon\" href=\"data:,\">\n"
"<style>\n"
"body{font-family:sans-serif;margin:1.5em;color:#222;max-width:60em}\n"
"h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.5em}\n"
"table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:left;"
"border-bottom:1px solid #ddd}td.n{text-align:right;"
"font-variant-numeric:tabular-nums}\n"
".bar{fill:#3a7bd5}.axis{stroke:#888}#err{color:#b00}\n"
"</style>\n</head>\n<body>\n"
"<h1>satchel on <span id=\"hostname\">&hellip;</span></h1>\n"
"<p>version <span id=\"version\"></span>, pid <span id=\"pid\"></span>, "
"up <span id=\"uptime\"></span>; updated <span id=\"updated\"></span> "
"<span id=\"err\"></span></p>\n"
"<h2>Connections</h2>\n<table>\n"
"<tr><th>sessions</th><td class=\"n\" id=\"sessions\">&hellip;</td></tr>\n"
"<tr><th>limit (max_connections)</th><td class=\"n\" id=\"limit\"></td>"
"</tr>\n"
"<tr><th>by protocol</th><td id=\"byproto\"></td></tr>\n</table>\n"
"<h2>Queue</h2>\n<table>\n"
"<tr><th>messages</th><td class=\"n\" id=\"queue_messages\"></td></tr>\n"
"<tr><th>deferred recipients</th><td class=\"n\" id=\"queue_deferred\">"
"</td></tr>\n"
"<tr><th>oldest deferred</th><td class=\"n\" id=\"queue_oldest\"></td>"
"</tr>\n</table>\n"
"<h2>Messages per minute, last hour</h2>\n"
"<svg id=\"chart\" width=\"610\" height=\"130\" role=\"img\" "
"aria-label=\"messages accepted per minute\"></svg>\n"
"<table>\n"
"<tr><th>accepted</th><td class=\"n\" id=\"accepted\"></td></tr>\n"
"<tr><th>delivered (local / remote)</th><td class=\"n\" id=\"delivered\">"
"</td></tr>\n"
"<tr><th>deferred / bounced</th><td class=\"n\" id=\"defbounced\"></td>"
"</tr>\n</table>\n"
"<h2>Refusals</h2>\n<table>\n"
"<tr><th>auth failures (last hour / total)</th><td class=\"n\" "
"id=\"auth_failures\"></td></tr>\n"
"<tr><th>limit hits (last hour)</th><td class=\"n\" id=\"hits_hour\">"
"</td></tr>\n"
"<tr><th>limit hits by limit</th><td id=\"hits\"></td></tr>\n</table>\n"
"<h2>Modules loaded</h2>\n<table id=\"modules\"></table>\n"
"<script src=\"/status.js\"></script>\n"
"</body>\n</html>\n";

static const char script[] =
"'use strict';\n"
"(function () {\n"
"  const SVG = 'http://www.w3.org/2000/svg';\n"
"  function set(id, text) { document.getElementById(id).textContent = "
"text; }\n"
"  function dur(s) {\n"
"    s = Math.floor(s);\n"
"    if (s < 120) return s + 's';\n"
"    if (s < 7200) return Math.floor(s / 60) + 'm';\n"
"    if (s < 172800) return Math.floor(s / 3600) + 'h';\n"
"    return Math.floor(s / 86400) + 'd';\n"
"  }\n"
"  function pairs(o) {\n"
"    const k = Object.keys(o);\n"
"    return k.length ? k.map(function (n) { return n + ' ' + o[n]; })"
".join(', ') : 'none';\n"
"  }\n"
"  function chart(v) {\n"
"    const svg = document.getElementById('chart');\n"
"    while (svg.firstChild) svg.removeChild(svg.firstChild);\n"
"    const max = Math.max(1, Math.max.apply(null, v));\n"
"    v.forEach(function (n, i) {\n"
"      const h = Math.round(n / max * 100);\n"
"      const r = document.createElementNS(SVG, 'rect');\n"
"      r.setAttribute('class', 'bar');\n"
"      r.setAttribute('x', 5 + i * 10); r.setAttribute('width', 8);\n"
"      r.setAttribute('y', 110 - h); r.setAttribute('height', h);\n"
"      const t = document.createElementNS(SVG, 'title');\n"
"      t.textContent = (v.length - 1 - i) + ' min ago: ' + n;\n"
"      r.appendChild(t); svg.appendChild(r);\n"
"    });\n"
"    const a = document.createElementNS(SVG, 'line');\n"
"    a.setAttribute('class', 'axis'); a.setAttribute('x1', 0);\n"
"    a.setAttribute('x2', 610); a.setAttribute('y1', 110);\n"
"    a.setAttribute('y2', 110); svg.appendChild(a);\n"
"    const l = document.createElementNS(SVG, 'text');\n"
"    l.setAttribute('x', 5); l.setAttribute('y', 126);\n"
"    l.setAttribute('font-size', 11);\n"
"    l.textContent = '60 min ago ... now; peak ' + max + '/min';\n"
"    svg.appendChild(l);\n"
"  }\n"
"  function modules(list) {\n"
"    const t = document.getElementById('modules');\n"
"    while (t.firstChild) t.removeChild(t.firstChild);\n"
"    list.forEach(function (m) {\n"
"      const tr = document.createElement('tr');\n"
"      [m.instance, m.module, m.version].forEach(function (x) {\n"
"        const td = document.createElement('td');\n"
"        td.textContent = x; tr.appendChild(td);\n"
"      });\n"
"      t.appendChild(tr);\n"
"    });\n"
"  }\n"
"  function show(s) {\n"
"    set('hostname', s.hostname); set('version', s.version);\n"
"    set('pid', s.pid); set('uptime', dur(s.uptime_seconds));\n"
"    set('updated', new Date(s.time * 1000).toLocaleTimeString());\n"
"    set('sessions', s.sessions);\n"
"    set('limit', s.connections_limit === null ? 'none' : "
"s.connections_limit);\n"
"    set('byproto', pairs(s.sessions_by_protocol));\n"
"    set('queue_messages', s.queue.messages);\n"
"    set('queue_deferred', s.queue.deferred_recipients);\n"
"    set('queue_oldest', s.queue.oldest_deferred_seconds ? "
"dur(s.queue.oldest_deferred_seconds) : 'none');\n"
"    set('accepted', s.messages.accepted);\n"
"    set('delivered', s.messages.delivered_local + ' / ' + "
"s.messages.delivered_remote);\n"
"    set('defbounced', s.messages.deferred + ' / ' + s.messages.bounced);\n"
"    set('auth_failures', s.auth_failures.last_hour + ' / ' + "
"s.auth_failures.total);\n"
"    set('hits_hour', s.limit_hits.last_hour);\n"
"    set('hits', pairs(s.limit_hits.by_limit));\n"
"    chart(s.accepted_per_minute); modules(s.modules);\n"
"    set('err', '');\n"
"  }\n"
"  function load() {\n"
"    fetch('/status.json', {cache: 'no-store'})\n"
"      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + "
"r.status); return r.json(); })\n"
"      .then(show)\n"
"      .catch(function (e) { set('err', '(not updated: ' + e.message + "
"')'); });\n"
"  }\n"
"  load();\n"
"  setInterval(load, 5000);\n"
"})();\n";

void
web_status_page(struct web_inst *wi, struct web_reply *r)
{
	(void)wi;
	r->status = 200;
	r->type = "text/html; charset=utf-8";
	web_buf_add(&r->body, page, sizeof(page) - 1);
}

void
web_status_script(struct web_inst *wi, struct web_reply *r)
{
	(void)wi;
	r->status = 200;
	r->type = "text/javascript; charset=utf-8";
	web_buf_add(&r->body, script, sizeof(script) - 1);
}
