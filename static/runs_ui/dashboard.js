// Runs dashboard: local times, copy buttons, countdowns, theme, keyboard navigation. No framework; htmx does the rest.
(function () {
  "use strict";

  const fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const rel = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

  function relative(date) {
    const s = (date.getTime() - Date.now()) / 1000;
    const abs = Math.abs(s);
    if (abs < 60) return rel.format(Math.round(s), "second");
    if (abs < 3600) return rel.format(Math.round(s / 60), "minute");
    if (abs < 86400) return rel.format(Math.round(s / 3600), "hour");
    return rel.format(Math.round(s / 86400), "day");
  }

  // <time data-local> carries UTC in its markup; show the viewer's timezone and keep UTC on hover.
  function localizeTimes(root) {
    root.querySelectorAll("time[data-local]").forEach((el) => {
      const date = new Date(el.getAttribute("datetime"));
      if (isNaN(date)) return;
      el.dataset.utc = el.dataset.utc || el.getAttribute("title") || el.textContent;
      el.textContent = `${fmt.format(date)} (${relative(date)})`;
      el.title = el.dataset.utc;
    });
  }

  function formatLeft(seconds) {
    if (seconds <= 0) return "expired";
    const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    return m ? `${m} min ${String(s).padStart(2, "0")} s left` : `${s} s left`;
  }

  function tickCountdowns() {
    document.querySelectorAll("[data-countdown]").forEach((el) => {
      const left = Number(el.dataset.countdown) - Date.now() / 1000;
      el.textContent = formatLeft(left);
      el.classList.toggle("urgent", left < 60);
    });
  }

  // Forms that arrive in live pushes were rendered without this user's CSRF token: add it on submit.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.method !== "post" || form.querySelector("[name=csrfmiddlewaretoken]")) return;
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrfmiddlewaretoken";
    input.value = document.querySelector("meta[name=csrf-token]")?.content || "";
    form.append(input);
  });

  document.addEventListener("click", (event) => {
    const copy = event.target.closest("[data-copy]");
    if (copy) {
      navigator.clipboard?.writeText(copy.dataset.copy).then(() => {
        copy.classList.add("copied");
        setTimeout(() => copy.classList.remove("copied"), 1200);
      });
    }
    const toggle = event.target.closest("[data-theme-toggle]");
    if (toggle) {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      document.documentElement.dataset.theme = next;
      localStorage.setItem("theme", next);
    }
  });

  // Keyboard: "/" go to, j/k move between steps or timeline items, o open/close, c copy the focused id.
  document.addEventListener("keydown", (event) => {
    const t = event.target;
    if (event.metaKey || event.ctrlKey || event.altKey) return;
    if (t.closest("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape") t.blur();
      return;
    }
    const items = Array.from(document.querySelectorAll("[data-nav-item]"));
    const current = document.activeElement?.closest("[data-nav-item]");
    const index = items.indexOf(current);
    if (event.key === "/") {
      event.preventDefault();
      document.getElementById("goto")?.focus();
    } else if (event.key === "j" || event.key === "k") {
      if (!items.length) return;
      const next = items[Math.min(items.length - 1, Math.max(0, index + (event.key === "j" ? 1 : -1)))] || items[0];
      next.setAttribute("tabindex", "0");
      next.focus();
      next.scrollIntoView({ block: "nearest" });
    } else if (event.key === "o" && current) {
      const details = current.querySelector("details");
      if (details) details.open = !details.open;
    } else if (event.key === "c" && current) {
      current.querySelector("[data-copy]")?.click();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    // Reconnect quickly at first, then back off to at most 30 s (the default waits up to 64 s).
    htmx.config.wsReconnectDelay = (retries) => Math.min(30000, 500 * 2 ** retries) * (0.5 + Math.random() / 2);
    localizeTimes(document);
    tickCountdowns();
    setInterval(() => { tickCountdowns(); layoutRunningWaterfalls(); }, 1000);
    setInterval(() => localizeTimes(document), 30000);
  });
  // --- live updates ------------------------------------------------------------------------------
  // Every element drawn from live state carries data-v="<object>@<epoch>-<seq>": the version it was
  // drawn from (pages drawn over HTTP stamp themselves half a step after the last push they could have
  // seen). A copy older than the one on the page never replaces it, however late it arrives.
  function parseVersion(value) {
    const at = value ? value.lastIndexOf("@") : -1;
    if (at < 0) return null;
    const [epoch, seq] = value.slice(at + 1).split("-").map(Number);
    return { key: value.slice(0, at), epoch, seq };
  }
  function isOlder(incoming, existing) {
    const a = parseVersion(incoming.getAttribute("data-v"));
    const b = parseVersion(existing.getAttribute("data-v"));
    if (!a || !b || a.key !== b.key) return false;
    return a.epoch < b.epoch || (a.epoch === b.epoch && a.seq < b.seq);
  }

  // A push names elements by id; one for something this page does not show (yet) — a run row before
  // the timeline has drawn it, say — has nothing to replace, and the list draws it fresh when it loads.
  // Such parts are dropped quietly here, rather than htmx logging an error for each; so are parts older
  // than what the page shows.
  htmx.defineExtension("live-oob", {
    transformResponse(text) {
      const tpl = document.createElement("template");
      tpl.innerHTML = text;
      const dropped = Array.from(tpl.content.children).filter((el) => {
        if (!el.hasAttribute("hx-swap-oob") || !el.id) return false;
        const target = document.getElementById(el.id);
        return !target || isOlder(el, target);
      });
      dropped.forEach((el) => el.remove());
      return dropped.length ? tpl.innerHTML : text;
    },
  });

  // Pushed fragments replace elements by id (htmx's ws extension). Lists are merged by JS: a
  // <template data-merge> in #live-merge carries items to replace where present and add otherwise.
  // A list still showing a "load more" loader is not complete: live items join it only once it is.
  function listComplete(list) { return !list.querySelector(":scope > .loader:not(.empty-note)"); }

  function mergeInto(list, item, where) {
    const existing = item.id && list.querySelector(`:scope > [id="${CSS.escape(item.id)}"]`);
    if (existing) {
      if (where !== "add-only" && !isOlder(item, existing)) existing.replaceWith(item);
      return true;
    }
    // Before its first page arrives, a list draws what it has itself: nothing is added ahead of it.
    if (list.querySelector(":scope > .loader.first-load")) return false;
    list.querySelectorAll(":scope > .empty-note").forEach((note) => note.remove());
    if (where === "top") { list.prepend(item); return true; }
    if (listComplete(list)) { list.append(item); return true; }
    return false;
  }

  // Waterfall bars carry their step's start/end; the chart is laid out here so it keeps growing live.
  function layoutWaterfall(wf) {
    const origin = Number(wf.dataset.origin);
    if (!origin) return;
    const now = Date.now() / 1000;
    const rows = Array.from(wf.querySelectorAll(".wf-row"));
    const ended = Number(wf.dataset.end) || 0;
    const end = Math.max(ended || now, ...rows.map((r) => Number(r.dataset.end) || 0));
    const span = Math.max(end - origin, 1);
    rows.forEach((row) => {
      const start = Number(row.dataset.start);
      if (!start) return;
      const stop = Number(row.dataset.end) || (ended ? start : now);
      const left = Math.min(Math.max(((start - origin) / span) * 100, 0), 100);
      const width = Math.max(Math.min(((stop - start) / span) * 100, 100 - left), 0.6);
      const bar = row.querySelector(".wf-bar");
      bar.style.setProperty("--start", left.toFixed(2));
      bar.style.setProperty("--width", width.toFixed(2));
    });
  }
  function layoutRunningWaterfalls() {
    document.querySelectorAll(".waterfall[data-origin]").forEach((wf) => { if (!wf.dataset.end) layoutWaterfall(wf); });
  }

  function applyMerge(box) {
    // Only what was put on the page is processed (htmx attributes, local times), not the whole page.
    const added = [];
    const copy = (node) => { const clone = node.cloneNode(true); added.push(clone); return clone; };
    box.querySelectorAll("template[data-merge]").forEach((tpl) => {
      const kind = tpl.dataset.merge;
      const items = Array.from(tpl.content.children);
      if (kind === "steps") {
        document.querySelectorAll(`ol.steps[data-run="${CSS.escape(tpl.dataset.run)}"]`).forEach((list) => {
          items.forEach((item) => mergeInto(list, copy(item)));
        });
      } else if (kind === "bodies") {
        items.forEach((body) => {
          document.querySelectorAll(`[data-message-body="${CSS.escape(body.dataset.messageBody)}"]`)
            .forEach((el) => { if (!isOlder(body, el)) el.replaceWith(copy(body)); });
        });
      } else if (kind === "waterfall") {
        document.querySelectorAll(`.waterfall[data-run="${CSS.escape(tpl.dataset.run)}"]`).forEach((wf) => {
          wf.dataset.origin = tpl.dataset.origin;
          wf.dataset.end = tpl.dataset.end;
          // Like the steps: new bars join only once the steps page has loaded (it appends its own bars).
          const steps = document.querySelector(`ol.steps[data-run="${CSS.escape(tpl.dataset.run)}"]`);
          const complete = !steps || listComplete(steps);
          items.forEach((row) => {
            const existing = row.id && wf.querySelector(`[id="${CSS.escape(row.id)}"]`);
            if (existing) { if (!isOlder(row, existing)) existing.replaceWith(copy(row)); }
            else if (complete) wf.append(copy(row));
          });
          layoutWaterfall(wf);
        });
      } else if (kind === "timeline") {
        const timeline = document.getElementById("timeline");
        if (!timeline) return;
        const newestFirst = timeline.dataset.order !== "asc";
        const insert = tpl.dataset.insert !== "0";
        items.forEach((item) => {
          const existing = item.id && timeline.querySelector(`:scope > [id="${CSS.escape(item.id)}"]`);
          // A run row on the page keeps its own state (expanded steps); its head is updated by id.
          if (existing) {
            if (!existing.classList.contains("tl-run") && !isOlder(item, existing)) existing.replaceWith(copy(item));
            return;
          }
          if (insert) mergeInto(timeline, copy(item), newestFirst ? "top" : "add-only");
        });
      } else if (kind === "rows") {
        // Threads first seen while this home page was open: added at the top, newest first.
        const rows = document.getElementById("thread-rows");
        if (!rows) return;
        items.reverse().forEach((row) => {
          if (row.id && document.getElementById(row.id)) return;
          rows.querySelectorAll(":scope > .empty-note").forEach((note) => note.remove());
          rows.prepend(copy(row));
        });
      }
    });
    box.replaceChildren();
    added.filter((node) => node.isConnected).forEach((node) => { htmx.process(node); localizeTimes(node); });
  }

  document.addEventListener("htmx:oobAfterSwap", (event) => {
    const box = document.getElementById("live-merge");
    if (box && box.children.length) applyMerge(box);
  });

  // Connection state: live over the socket; while it is down, poll the same state over HTTP.
  let pollTimer = null;
  function setState(state, label) {
    const el = document.getElementById("live-state");
    if (el) { el.dataset.state = state; el.textContent = label; }
  }
  function startPolling() {
    if (pollTimer || !document.getElementById("live-poll")) return;
    setState("polling", "reconnecting — polling");
    pollTimer = setInterval(() => htmx.trigger("#live-poll", "live-poll"), 5000);
  }
  function stopPolling() { clearInterval(pollTimer); pollTimer = null; }
  document.addEventListener("htmx:wsConnecting", () => { if (!pollTimer) setState("connecting", "connecting"); });
  document.addEventListener("htmx:wsOpen", () => { stopPolling(); setState("live", "live"); });
  document.addEventListener("htmx:wsClose", (event) => {
    const code = event.detail.event.code;
    if (code === 4401) { stopPolling(); setState("off", "signed out — reload"); return; }
    if (code === 4403 || code === 4404) { stopPolling(); setState("off", "live updates refused"); return; }
    startPolling();
  });
  document.addEventListener("htmx:wsError", startPolling);
  // Fragments from htmx requests and WebSocket pushes get the same treatment.
  // A link to #step_… on a run page: the steps arrive after the page, so scroll once they are there.
  let hashShown = false;
  function showHash() {
    if (hashShown || !location.hash) return;
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (!target) return;
    hashShown = true;
    target.scrollIntoView({ block: "start" });
    target.focus({ preventScroll: true });
  }

  document.addEventListener("htmx:load", (event) => {
    showHash();
    localizeTimes(event.detail.elt);
    tickCountdowns();
    document.querySelectorAll(".waterfall[data-origin]").forEach(layoutWaterfall);
  });
  document.addEventListener("htmx:oobAfterSwap", (event) => localizeTimes(event.detail.target || document));
})();
