// The login page: trade an API token for a session cookie (HttpOnly: the page
// never keeps the token), then go where the user was heading.

import { login } from "./api.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const token = form.token.value.trim();
  if (!token) {
    error.textContent = "Enter a token.";
    error.hidden = false;
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await login(token);
    const next = new URLSearchParams(location.search).get("next") || "/";
    // only a path of this site: never an open redirect
    location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
  } catch (e) {
    error.textContent = e.status === 401 || e.status === 403 ? "This token is not valid." : `Cannot sign in: ${e.message}`;
    error.hidden = false;
    form.token.select();
  } finally {
    button.disabled = false;
  }
});
