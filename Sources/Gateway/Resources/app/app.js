// Swift Chat's web client (issue 15): plain JavaScript, no build step. It speaks the stock
// Socket.IO wire protocol (Engine.IO v4 over WebSocket) itself, with the REST API for accounts,
// the conversation list and history. Served by the gateway at /app/ when WEB_APP=on.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: null, me: null, socket: null, partner: null, conversations: new Map(), online: new Set(), typingTimer: null, sentTyping: 0 };

// --- REST -----------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new Error((data && data.error && data.error.message) || response.statusText);
  return data;
}

// --- Socket.IO over WebSocket ------------------------------------------------------------------

class SocketIO {
  constructor(token, onEvent, onStatus) {
    this.token = token; this.onEvent = onEvent; this.onStatus = onStatus;
    this.nextAck = 0; this.acks = new Map(); this.retry = 500; this.closed = false;
    this.open();
  }
  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/socket.io/?EIO=4&transport=websocket`);
    this.ws = ws;
    ws.onmessage = (message) => this.receive(String(message.data));
    ws.onclose = () => {
      this.connected = false;
      this.onStatus(false);
      if (!this.closed) setTimeout(() => this.open(), this.retry = Math.min(this.retry * 2, 8000));
    };
  }
  receive(text) {
    const type = text[0];
    if (type === "0") return this.ws.send("40" + JSON.stringify({ token: this.token }));
    if (type === "2") return this.ws.send("3");
    if (type !== "4") return;
    const packet = text.slice(1);
    const match = /^(\d)(\d*)(.*)$/s.exec(packet);
    if (!match) return;
    const [, kind, id, rest] = match;
    if (kind === "0") { this.connected = true; this.retry = 500; return this.onStatus(true); }
    if (kind === "4") { this.closed = true; return this.onStatus(false, JSON.parse(rest || "{}").message); }
    if (kind === "2") {
      const [name, ...args] = JSON.parse(rest);
      if (id) this.ws.send("43" + id + "[]");  // acknowledges deliveries that ask for it
      return this.onEvent(name, args[0]);
    }
    if (kind === "3") {
      const waiting = this.acks.get(id);
      if (waiting) { this.acks.delete(id); waiting(JSON.parse(rest)[0]); }
    }
  }
  emit(name, data) {
    if (this.connected) this.ws.send("42" + JSON.stringify([name, data]));
  }
  call(name, data, timeoutMs = 8000) {
    return new Promise((resolve, reject) => {
      if (!this.connected) return reject(new Error("not connected"));
      const id = String(++this.nextAck);
      const timer = setTimeout(() => { this.acks.delete(id); reject(new Error("no answer")); }, timeoutMs);
      this.acks.set(id, (value) => { clearTimeout(timer); value && value.error ? reject(new Error(value.error.message)) : resolve(value); });
      this.ws.send("42" + id + JSON.stringify([name, data]));
    });
  }
  close() { this.closed = true; this.ws.close(); }
}

// --- Authentication ---------------------------------------------------------------------------

let signingUp = false;
function showTab(signup) {
  signingUp = signup;
  $("tab-signup").classList.toggle("active", signup);
  $("tab-login").classList.toggle("active", !signup);
  $("username-row").hidden = !signup;
  $("username").required = signup;
  $("auth-submit").textContent = signup ? "Create account" : "Log in";
  $("auth-error").textContent = "";
}

async function submitAuth(event) {
  event.preventDefault();
  const email = $("email").value.trim(), password = $("password").value;
  try {
    if (signingUp) await api("POST", "/api/auth/signup", { username: $("username").value.trim(), email, password });
    const login = await api("POST", "/api/auth/login", { email, password });
    sessionStorage.setItem("chat.token", login.token);
    start(login.token);
  } catch (error) {
    $("auth-error").textContent = error.message;
  }
}

async function start(token) {
  state.token = token;
  try {
    state.me = (await api("GET", "/api/auth/profile")).user;
  } catch (error) {
    sessionStorage.removeItem("chat.token");
    state.token = null;
    $("auth").hidden = false;
    return;
  }
  $("auth").hidden = true;
  $("chat").hidden = false;
  $("me-name").textContent = state.me.username;
  state.socket = new SocketIO(token, onEvent, onStatus);
  await loadConversations();
}

function onStatus(connected, refusal) {
  $("connection").textContent = connected ? "online" : (refusal || "reconnecting…");
  $("connection").classList.toggle("online", connected);
  if (connected) { loadConversations(); if (state.partner) openConversation(state.partner); }
}

// --- Conversations ----------------------------------------------------------------------------

async function loadConversations() {
  const page = await api("GET", "/api/conversations?limit=50");
  state.conversations.clear();
  for (const c of page.conversations) if (c.partner) state.conversations.set(c.partner.id, c);
  renderConversations();
  watchPresence();
}

// Watches the partners' presence (answered with their state now, then userOnline/userOffline).
async function watchPresence() {
  const ids = [...state.conversations.keys()].slice(0, 500);
  if (!ids.length || !state.socket || !state.socket.connected) return;
  try {
    const answer = await state.socket.call("presenceSubscribe", { userIds: ids });
    for (const user of answer.users) user.isOnline ? state.online.add(user.userId) : state.online.delete(user.userId);
    refreshPresence();
  } catch (error) {
    // Presence is a nicety: the next list load tries again.
  }
}

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  let total = 0;
  for (const c of state.conversations.values()) {
    // The open conversation is read as messages arrive.
    if (state.partner && state.partner.id === c.partner.id) c.unreadCount = 0;
    total += c.unreadCount;
    const item = document.createElement("li");
    item.dataset.user = c.partner.id;
    item.classList.toggle("active", state.partner && state.partner.id === c.partner.id);
    const dot = document.createElement("span");
    dot.className = "dot" + (state.online.has(c.partner.id) ? " online" : "");
    const text = document.createElement("div");
    text.className = "text";
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = c.partner.username;
    const last = document.createElement("div");
    last.className = "last";
    last.textContent = c.lastMessage ? (c.lastMessage.isDeleted ? "(deleted)" : c.lastMessage.content) : "";
    text.append(name, last);
    item.append(dot, text);
    if (c.unreadCount > 0) {
      const badge = document.createElement("span");
      badge.className = "badge unread";
      badge.textContent = c.unreadCount;
      item.append(badge);
    }
    item.onclick = () => openConversation(c.partner);
    list.append(item);
  }
  $("total-unread").hidden = total === 0;
  $("total-unread").textContent = total;
}

async function searchPeople() {
  const query = $("people-search").value.trim();
  const list = $("people");
  list.replaceChildren();
  if (!query) return;
  const page = await api("GET", "/api/users?query=" + encodeURIComponent(query) + "&limit=8");
  for (const user of page.users) {
    const item = document.createElement("li");
    item.textContent = user.username;
    item.onclick = () => { $("people-search").value = ""; list.replaceChildren(); openConversation(user); };
    list.append(item);
  }
}

async function openConversation(partner) {
  state.partner = { id: partner.id, username: partner.username };
  $("partner-name").textContent = partner.username;
  $("partner-dot").className = "dot" + (state.online.has(partner.id) ? " online" : "");
  $("composer").hidden = false;
  $("typing").hidden = true;
  const history = await api("GET", `/api/messages/conversation/${partner.id}?limit=50`);
  if (!state.partner || state.partner.id !== partner.id) return;
  $("messages").replaceChildren();
  for (const message of history) appendMessage(message);
  const unread = history.filter((m) => m.senderId === partner.id && !m.isRead);
  if (unread.length && state.socket) state.socket.emit("messageRead", { messageId: unread[unread.length - 1].id });
  const entry = state.conversations.get(partner.id);
  if (entry) entry.unreadCount = 0;
  renderConversations();
  $("draft").focus();
}

function appendMessage(message) {
  if (document.querySelector(`#messages li[data-id="${message.id}"]`)) return;
  const mine = message.senderId === state.me.id;
  const item = document.createElement("li");
  item.dataset.id = message.id;
  item.className = mine ? "mine" : "theirs";
  item.textContent = message.isDeleted ? "(deleted)" : message.content;
  const meta = document.createElement("span");
  meta.className = "meta";
  const time = new Date(message.createdAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  meta.textContent = mine ? `${time} · ${message.isRead ? "Read" : "Sent"}` : time;
  item.append(meta);
  $("messages").append(item);
  $("messages").scrollTop = $("messages").scrollHeight;
}

function markRead(messageId) {
  // The receiver read everything up to this message.
  for (const item of document.querySelectorAll("#messages li.mine")) {
    if (Number(item.dataset.id) <= messageId) item.querySelector(".meta").textContent = item.querySelector(".meta").textContent.replace("Sent", "Read");
  }
}

async function send(event) {
  event.preventDefault();
  const content = $("draft").value.trim();
  if (!content || !state.partner) return;
  $("draft").value = "";
  state.sentTyping = 0;
  state.socket.emit("stopTyping", { receiverId: state.partner.id });
  try {
    appendMessage(await state.socket.call("sendMessage", { receiverId: state.partner.id, content }));
    if (!state.conversations.has(state.partner.id)) loadConversations();
  } catch (error) {
    $("draft").value = content;
    alert("Not sent: " + error.message);
  }
}

function typed() {
  if (!state.partner || !state.socket) return;
  const now = Date.now();
  if (now - state.sentTyping > 2000) { state.sentTyping = now; state.socket.emit("typing", { receiverId: state.partner.id }); }
}

// --- Events -----------------------------------------------------------------------------------

function onEvent(name, data) {
  switch (name) {
    case "receiveMessage": {
      if (data.roomId) return;
      if (state.partner && data.senderId === state.partner.id) {
        appendMessage(data);
        state.socket.emit("messageRead", { messageId: data.id });
        $("typing").hidden = true;
      }
      loadConversations();
      break;
    }
    case "messageSent":
      if (state.partner && data.receiverId === state.partner.id) appendMessage(data);
      break;
    case "messageReadByReceiver":
      markRead(data.id);
      break;
    case "messagesReadByReceiver":
      markRead(Number.MAX_SAFE_INTEGER);
      break;
    case "typing":
      if (state.partner && data.senderId === state.partner.id) {
        $("typing").hidden = false;
        clearTimeout(state.typingTimer);
        state.typingTimer = setTimeout(() => { $("typing").hidden = true; }, 6000);
      }
      break;
    case "stopTyping":
      if (state.partner && data.senderId === state.partner.id) $("typing").hidden = true;
      break;
    case "onlineUsers":
      state.online = new Set(data.map((u) => u.userId));
      refreshPresence();
      break;
    case "userOnline":
      state.online.add(data.userId);
      refreshPresence();
      break;
    case "userOffline":
      state.online.delete(data.userId);
      refreshPresence();
      break;
    case "resync":
      loadConversations();
      if (state.partner) openConversation(state.partner);
      break;
  }
}

function refreshPresence() {
  renderConversations();
  if (state.partner) $("partner-dot").className = "dot" + (state.online.has(state.partner.id) ? " online" : "");
}

// --- Start ------------------------------------------------------------------------------------

$("tab-login").onclick = () => showTab(false);
$("tab-signup").onclick = () => showTab(true);
$("auth-form").onsubmit = submitAuth;
$("composer").onsubmit = send;
$("draft").oninput = typed;
$("people-search").oninput = searchPeople;
$("logout").onclick = () => { sessionStorage.removeItem("chat.token"); if (state.socket) state.socket.close(); location.reload(); };
const saved = sessionStorage.getItem("chat.token");
if (saved) start(saved); else $("auth").hidden = false;
