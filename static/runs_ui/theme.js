// The light or dark theme, set before the page paints (a file, not inline: the CSP allows no inline script).
document.documentElement.dataset.theme =
  localStorage.getItem("theme") || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
