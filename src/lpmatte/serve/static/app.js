// The lpmatte page: one request per image (format=rgba); the alpha view and the
// backgrounds are drawn here from that cutout, so switching background is instant.
// "Use camera" streams webcam frames over the /v1/stream WebSocket (one frame in flight),
// where the server keeps the video's temporal stabilisation across frames.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, input: null, cutout: null, cutoutBlob: null, cutoutUrl: null,
                live: null };
const LIVE_SIDE = "640";  // the camera's frames are shrunk to this for speed unless chosen

function setStatus(text, kind) {
  $("status").textContent = text;
  document.body.dataset.state = kind;
}

async function errorMessage(response) {
  try {
    return (await response.json()).error || response.statusText;
  } catch {
    return `${response.status} ${response.statusText}`;
  }
}

async function matte(file) {
  state.file = file;
  $("input-view").src = URL.createObjectURL(file);
  setStatus(`Matting ${file.name || "image"}…`, "working");
  $("download").classList.add("disabled");
  const form = new FormData();
  form.append("file", file, file.name || "upload");
  const maxSide = $("max-side").value;
  const query = new URLSearchParams({ format: "rgba" });
  if (maxSide) query.set("max_side", maxSide);
  const started = performance.now();
  let response;
  try {
    response = await fetch(`v1/matte?${query}`, { method: "POST", body: form });
  } catch (error) {
    return setStatus(`The server did not answer (${error.message}).`, "error");
  }
  if (!response.ok) return setStatus(`Error ${response.status}: ${await errorMessage(response)}`, "error");
  state.cutoutBlob = await response.blob();
  state.cutout = await createImageBitmap(state.cutoutBlob);
  state.input = await createImageBitmap(file);
  drawAlpha();
  drawCutout();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  setStatus(`Done in ${seconds} s (${state.cutout.width}×${state.cutout.height}).`, "done");
}

function sizedContext(canvas, image) {
  canvas.width = image.width;
  canvas.height = image.height;
  return canvas.getContext("2d");
}

function drawAlpha() {
  const canvas = $("alpha-view");
  const context = sizedContext(canvas, state.cutout);
  context.drawImage(state.cutout, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    data[i] = data[i + 1] = data[i + 2] = data[i + 3];
    data[i + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
  canvas.dataset.ready = "true";
}

function background() {
  return document.querySelector('input[name="bg"]:checked').value;
}

function drawCutout(live = false) {
  if (!state.cutout) return;
  const canvas = $("cutout-view");
  const context = sizedContext(canvas, state.cutout);
  const { width, height } = canvas;
  const mode = background();
  if (mode === "color") {
    context.fillStyle = $("color").value;
    context.fillRect(0, 0, width, height);
  } else if (mode === "blur") {
    // the input scaled to this size, blurred; drawn oversize so the edges stay opaque
    const radius = Number($("blur").value) * Math.max(width, height) / 1000;
    context.filter = `blur(${radius}px)`;
    context.drawImage(state.input, -2 * radius, -2 * radius, width + 4 * radius, height + 4 * radius);
    context.filter = "none";
  }
  context.drawImage(state.cutout, 0, 0);
  canvas.classList.toggle("checker", mode === "transparent");
  canvas.dataset.ready = "true";
  if (!live) updateDownload(mode);
}

function updateDownload(mode) {
  const link = $("download");
  const name = state.file ? state.file.name || "image" : "camera";
  const stem = name.replace(/\.[^.]*$/, "");
  link.download = `${stem}-${mode === "transparent" ? "cutout" : mode}.png`;
  if (state.cutoutUrl) URL.revokeObjectURL(state.cutoutUrl);
  if (mode === "transparent") {  // the server's PNG itself, byte for byte
    state.cutoutUrl = URL.createObjectURL(state.cutoutBlob);
    return enableDownload(link, state.cutoutUrl);
  }
  $("cutout-view").toBlob((blob) => {
    state.cutoutUrl = URL.createObjectURL(blob);
    enableDownload(link, state.cutoutUrl);
  }, "image/png");
}

function enableDownload(link, url) {
  link.href = url;
  link.classList.remove("disabled");
  link.setAttribute("aria-disabled", "false");
}

// --- live camera ---------------------------------------------------------------------------

async function startCamera() {
  if (!navigator.mediaDevices || !window.WebSocket) {
    return setStatus("This browser cannot share a camera here.", "error");
  }
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    return setStatus(`No camera (${error.message}).`, "error");
  }
  const video = $("camera-view");
  video.srcObject = media;
  await video.play();
  video.hidden = false;
  $("input-view").hidden = true;
  const query = new URLSearchParams({ format: "rgba", max_side: $("max-side").value || LIVE_SIDE });
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = new WebSocket(`${scheme}//${location.host}${location.pathname.replace(/[^/]*$/, "")}v1/stream?${query}`);
  socket.binaryType = "blob";
  state.file = null;
  state.live = { media, socket, frames: 0, started: performance.now(), grab: document.createElement("canvas") };
  $("camera").textContent = "Stop camera";
  $("camera").setAttribute("aria-pressed", "true");
  socket.onopen = () => { setStatus("Camera on: matting…", "live"); sendFrame(); };
  socket.onmessage = (event) => received(event.data);
  socket.onclose = () => { if (state.live && state.live.socket === socket) stopCamera("The stream closed."); };
}

function sendFrame() {
  const live = state.live;
  if (!live || live.socket.readyState !== WebSocket.OPEN) return;
  const video = $("camera-view");
  const context = sizedContext(live.grab, { width: video.videoWidth, height: video.videoHeight });
  context.drawImage(video, 0, 0);
  live.grab.toBlob((blob) => {
    if (state.live === live && blob) {
      live.pending = blob;
      live.socket.send(blob);
    }
  }, "image/jpeg", 0.9);
}

async function received(data) {
  const live = state.live;
  if (!live) return;
  if (typeof data === "string") {  // {"error", "status"}: that frame was skipped
    const error = JSON.parse(data);
    setStatus(`Frame skipped: ${error.error}`, "live");
  } else {
    const cutout = await createImageBitmap(data);
    const input = await createImageBitmap(live.pending, { resizeWidth: cutout.width,
                                                          resizeHeight: cutout.height });
    // the camera may have been stopped while the bitmaps decoded: that frame is dropped, else
    // it would set the status back to "live" after "Camera off"
    if (state.live !== live) return;
    state.cutoutBlob = data;
    state.cutout = cutout;
    state.input = input;
    drawAlpha();
    drawCutout(true);
    live.frames += 1;
    document.body.dataset.frames = String(live.frames);
    const fps = live.frames / ((performance.now() - live.started) / 1000);
    setStatus(`Camera on: ${live.frames} frames, ${fps.toFixed(1)} frames/s ` +
              `(${state.cutout.width}×${state.cutout.height}).`, "live");
  }
  sendFrame();
}

function stopCamera(message = "Camera off.") {
  const live = state.live;
  if (!live) return;
  state.live = null;
  live.socket.close();
  for (const track of live.media.getTracks()) track.stop();
  $("camera-view").hidden = true;
  $("input-view").hidden = false;
  $("camera").textContent = "Use camera";
  $("camera").setAttribute("aria-pressed", "false");
  if (state.cutout) {  // the last frame stays, downloadable
    drawCutout();
    if (live.pending) $("input-view").src = URL.createObjectURL(live.pending);
  }
  setStatus(`${message} ${live.frames} frames matted.`, "done");
}

function pick(files) {
  const file = files && files[0];
  if (!file) return;
  stopCamera();
  matte(file);
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => pick(event.target.files));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => { event.preventDefault(); pick(event.dataTransfer.files); });
  drop.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); $("file").click(); }
  });
  for (const input of document.querySelectorAll('input[name="bg"]')) {
    input.addEventListener("change", () => drawCutout());
  }
  $("color").addEventListener("input", () => { document.querySelector('input[value="color"]').checked = true; drawCutout(); });
  $("blur").addEventListener("input", () => { document.querySelector('input[value="blur"]').checked = true; drawCutout(); });
  $("max-side").addEventListener("change", () => { if (state.file) matte(state.file); });
  $("camera").addEventListener("click", () => (state.live ? stopCamera() : startCamera()));
}

wire();
