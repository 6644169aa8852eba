// What the kiosk's page scripts share through `window`, for the type check of webui/static/js
// (tsconfig.json). Stripe.js is typed by @stripe/stripe-js of the release train the page loads
// (kiosk/payments.py STRIPE_JS_URL), so an option that train does not define fails the check.
import type {StripeConstructor} from "@stripe/stripe-js";

declare global {
  interface KioskReply {
    ok: boolean;
    status: number;
    data: any;
  }

  /** kiosk.js: helpers the other scripts share. */
  interface KioskHelpers {
    text: Record<string, string>;
    csrf: string;
    post(url: string, body?: object | null, options?: {form?: HTMLFormElement; keepalive?: boolean}): Promise<KioskReply>;
    toast(message: string, kind?: string): void;
    setCart(count: number, label?: string): void;
    _toastTimer?: ReturnType<typeof setTimeout>;
  }

  /** idle.js: the idle timer. */
  interface KioskIdle {
    poke(): void;
    pause(): void;
    resume(): void;
  }

  interface Window {
    Stripe: StripeConstructor;
    kiosk: KioskHelpers;
    kioskIdle?: KioskIdle;
    kioskPaying?: boolean;
  }
}

export {};
