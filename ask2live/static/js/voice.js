// Voice over Agora (agora-rtc-sdk-ng). The SDK is loaded from its CDN only once the server
// says voice is configured and hands out a token; nothing of Agora loads otherwise.
//
// Listeners join as "audience" and subscribe; the host and granted speakers join as "host"
// and publish the microphone (echo cancellation, noise suppression, gain control on).
// A grant or revoke arrives as a voice_token frame over the room socket: the role, the
// token and the microphone switch without leaving the channel.

export const AGORA_SDK_VERSION = "4.24.8";
export const AGORA_SDK_URL = `https://cdn.jsdelivr.net/npm/agora-rtc-sdk-ng@${AGORA_SDK_VERSION}/AgoraRTC_N-production.js`;
const AGORA_SDK_INTEGRITY = "sha384-LLetIWljRRsVdAiDUW5qNfAuV8n0YvSPGr6vd4Fy/COvGIGaW1RJtURRgB76/YVU";

const SPEAKING_LEVEL = 0.06;
const LEVEL_POLL_MS = 200;
// Renew a token this long before it expires (the server's publisher tokens live 5 minutes).
const RENEW_BEFORE_S = 60;

let sdkPromise = null;

export function loadAgora() {
  if (window.AgoraRTC) return Promise.resolve(window.AgoraRTC);
  if (!sdkPromise) {
    sdkPromise = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = AGORA_SDK_URL;
      script.integrity = AGORA_SDK_INTEGRITY;
      script.crossOrigin = "anonymous";
      script.async = true;
      script.onload = () => (window.AgoraRTC ? resolve(window.AgoraRTC) : reject(new Error("no AgoraRTC")));
      script.onerror = () => {
        sdkPromise = null;
        reject(new Error("The voice library could not be loaded."));
      };
      document.head.append(script);
    });
  }
  return sdkPromise;
}

export class Voice {
  // requestToken(): asks the room socket for a fresh token (answered with a voice_token frame).
  // onChange(): the state, the speaking set or the mute state changed.
  constructor({ requestToken, onChange }) {
    this.requestToken = requestToken;
    this.onChange = onChange;
    this.client = null;
    this.mic = null;
    this.role = null; // "publisher" | "subscriber"
    this.state = "off"; // off | joining | on | error
    this.error = "";
    this.muted = false;
    this.speaking = new Set();
    this.levelTimer = 0;
    this.renewTimer = 0;
    this.uid = null;
  }

  async join(token) {
    if (this.state === "joining" || this.state === "on") return;
    this.state = "joining";
    this.onChange();
    try {
      const AgoraRTC = await loadAgora();
      AgoraRTC.setLogLevel?.(3);
      const client = AgoraRTC.createClient({ mode: "live", codec: "vp8" });
      this.client = client;
      client.on("user-published", async (user, mediaType) => {
        if (mediaType !== "audio") return;
        await client.subscribe(user, mediaType);
        user.audioTrack?.play();
        this.onChange();
      });
      client.on("user-unpublished", () => this.onChange());
      client.on("user-left", () => this.onChange());
      client.on("token-privilege-will-expire", () => this.requestToken());
      this.uid = token.uid;
      this.role = token.role;
      await client.setClientRole(token.role === "publisher" ? "host" : "audience");
      await client.join(token.app_id, token.channel, token.rtc_token, token.uid);
      if (token.role === "publisher") await this.publish();
      this.scheduleRenew(token);
      this.state = "on";
      this.levelTimer = setInterval(() => this.pollLevels(), LEVEL_POLL_MS);
    } catch (error) {
      this.state = "error";
      this.error = error?.message || String(error);
      await this.leave(true);
    }
    this.onChange();
  }

  async publish() {
    const AgoraRTC = window.AgoraRTC;
    this.mic = await AgoraRTC.createMicrophoneAudioTrack({ AEC: true, ANS: true, AGC: true });
    if (this.muted) await this.mic.setMuted?.(true);
    await this.client.publish([this.mic]);
  }

  async unpublish() {
    if (!this.mic) return;
    const mic = this.mic;
    this.mic = null;
    try {
      await this.client.unpublish([mic]);
    } finally {
      mic.close();
    }
  }

  // A voice_token frame: a renewal, or a grant (publisher) or revoke (subscriber).
  async token(token) {
    if (!this.client || this.state !== "on") return;
    const changed = token.role !== this.role;
    this.role = token.role;
    try {
      await this.client.renewToken(token.rtc_token);
      if (changed && token.role === "publisher") {
        await this.client.setClientRole("host");
        await this.publish();
      } else if (changed) {
        await this.unpublish();
        await this.client.setClientRole("audience");
      }
      this.scheduleRenew(token);
    } catch (error) {
      this.error = error?.message || String(error);
    }
    this.onChange();
  }

  scheduleRenew(token) {
    clearTimeout(this.renewTimer);
    if (!token.expires_at) return;
    const wait = Math.max(5, token.expires_at - Date.now() / 1000 - RENEW_BEFORE_S) * 1000;
    this.renewTimer = setTimeout(() => this.requestToken(), wait);
  }

  async setMuted(muted) {
    this.muted = muted;
    if (this.mic) await this.mic.setMuted?.(muted);
    this.onChange();
  }

  pollLevels() {
    if (!this.client) return;
    const now = new Set();
    if (this.mic && !this.muted && this.mic.getVolumeLevel() > SPEAKING_LEVEL) now.add(this.uid);
    for (const user of this.client.remoteUsers || []) {
      if (user.audioTrack && user.audioTrack.getVolumeLevel() > SPEAKING_LEVEL) now.add(Number(user.uid));
    }
    const same = now.size === this.speaking.size && [...now].every((uid) => this.speaking.has(uid));
    if (!same) {
      this.speaking = now;
      this.onChange();
    }
  }

  async leave(keepState = false) {
    clearInterval(this.levelTimer);
    clearTimeout(this.renewTimer);
    this.speaking = new Set();
    const client = this.client;
    this.client = null;
    try {
      if (this.mic) {
        this.mic.close();
        this.mic = null;
      }
      if (client) await client.leave();
    } catch (error) {
      // leaving anyway
    }
    if (!keepState) {
      this.state = "off";
      this.onChange();
    }
  }
}
