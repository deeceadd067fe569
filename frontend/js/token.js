// Access-token hand-off. A server started with DROPVIZ_TOKEN is opened as
// http://host:port/#token=<token>: this module moves the token into the
// dropviz_token cookie, which the browser then sends with every API call and
// stream of this origin, and removes it from the address bar and history.
// SameSite=Strict keeps the cookie out of requests that other sites start.
const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
if (match) {
  const token = decodeURIComponent(match[1]);
  document.cookie = `dropviz_token=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
  history.replaceState(null, "", window.location.pathname + window.location.search);
}
