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
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      document.getElementById(opener.dataset.openDialog)?.showModal();
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
    localizeTimes(document);
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
    setInterval(() => localizeTimes(document), 30000);
  });
  // Fragments from htmx requests and WebSocket pushes get the same treatment.
  document.addEventListener("htmx:load", (event) => { localizeTimes(event.detail.elt); tickCountdowns(); });
  document.addEventListener("htmx:oobAfterSwap", (event) => localizeTimes(event.detail.target || document));
})();
