// Access-token hand-off. A server started with DROPVIZ_TOKEN is opened as
// http://host:port/#token=<token>: this module moves the token into the
// dropviz_token cookie, which the browser then sends with every API call and
// stream of this origin, and removes it from the address bar and history.
// Other fragment parameters, such as the page's own run=<id>, stay.
// SameSite=Strict keeps the cookie out of requests that other sites start.
const parameters = new URLSearchParams(window.location.hash.slice(1));
const token = parameters.get("token");
if (token) {
  document.cookie = `dropviz_token=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
  parameters.delete("token");
  const rest = parameters.toString();
  const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : "");
  history.replaceState(null, "", url);
}
