// Small DOM and time helpers shared by the explorer's modules.

export const $ = (id) => document.getElementById(id);

export const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const kid of kids) e.append(kid);
  return e;
};

export function say(text, isError = false) {
  const m = $('message');
  m.textContent = text;
  m.className = isError ? 'error' : '';
  m.hidden = !text;
}

export const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : '');
export const ms = (iso) => (iso ? Date.parse(iso) : null);

export function duration(from, to) {
  if (from === null) return '';
  const d = Math.max(0, (to ?? Date.now()) - from);
  if (d < 1000) return `${d} ms`;
  if (d < 60_000) return `${(d / 1000).toFixed(1)} s`;
  if (d < 3_600_000) return `${Math.floor(d / 60_000)} min ${Math.round((d % 60_000) / 1000)} s`;
  return `${(d / 3_600_000).toFixed(1)} h`;
}

export const timeCell = (iso) => el('td', { title: iso ? `${iso} (UTC)` : '' }, localTime(iso));
export const badge = (status) => el('span', { class: `badge s-${status}` }, status.toLowerCase());

/// "due in 40 s" for a time still to come (null once it is past).
export function dueIn(iso, now = Date.now()) {
  const left = iso ? Date.parse(iso) - now : 0;
  if (!(left > 0)) return null;
  const s = Math.ceil(left / 1000);
  if (s < 120) return `due in ${s} s`;
  const m = Math.round(s / 60);
  if (m < 120) return `due in ${m} min`;
  return `due in ${Math.round(m / 60)} h`;
}
