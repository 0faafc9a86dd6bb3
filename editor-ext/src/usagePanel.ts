// "Covey: Show Usage": a webview that renders covey/usageSummary.
import * as crypto from 'crypto';
import * as vscode from 'vscode';
import { Methods, UsageSummary } from './protocol';
import { renderUsageHtml, SINCE_CHOICES } from './usageHtml';

export type UsageSource = (since: string, token: vscode.CancellationToken) => Promise<UsageSummary | null>;

function describeError(error: unknown): string {
  if (typeof error === 'object' && error !== null && (error as { code?: unknown }).code === -32601) {
    return `this Covey server does not answer ${Methods.usageSummary}; update Covey in the server's Python environment`;
  }
  return `${Methods.usageSummary}: ${error instanceof Error ? error.message : String(error)}`;
}

export class UsagePanel {
  private panel: vscode.WebviewPanel | undefined;
  private since = 'today';
  private tokens: vscode.CancellationTokenSource | undefined;

  constructor(private readonly source: UsageSource) {}

  async show(): Promise<void> {
    if (this.panel) {
      this.panel.reveal();
    } else {
      this.panel = vscode.window.createWebviewPanel('covey.usage', 'Covey Usage', vscode.ViewColumn.Active, {
        enableScripts: true,
      });
      this.panel.onDidDispose(() => {
        this.tokens?.cancel();
        this.panel = undefined;
      });
      this.panel.webview.onDidReceiveMessage((message: { since?: unknown }) => {
        const since = message?.since;
        if (typeof since === 'string' && SINCE_CHOICES.some((c) => c.value === since)) {
          this.since = since;
          void this.refresh();
        }
      });
    }
    await this.refresh();
  }

  async refresh(): Promise<void> {
    const panel = this.panel;
    if (!panel) {
      return;
    }
    // A newer refresh supersedes an older one still in flight.
    this.tokens?.cancel();
    const tokens = (this.tokens = new vscode.CancellationTokenSource());
    const page = { since: this.since, nonce: crypto.randomBytes(16).toString('hex'), cspSource: panel.webview.cspSource };
    try {
      const summary = await this.source(this.since, tokens.token);
      if (!tokens.token.isCancellationRequested) {
        panel.webview.html = renderUsageHtml({ ...page, summary: summary ?? { rows: [], total: {} } });
      }
    } catch (error) {
      if (!tokens.token.isCancellationRequested) {
        panel.webview.html = renderUsageHtml({ ...page, error: describeError(error) });
      }
    }
  }
}
