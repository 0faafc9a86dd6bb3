import { beforeEach, describe, expect, it } from 'vitest';
import { created, resetStub } from 'vscode';
import { CoveyStatusBar } from '../src/statusBar';
import { UsagePanel } from '../src/usagePanel';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('CoveyStatusBar', () => {
  beforeEach(resetStub);

  it('shows the item and follows the model', () => {
    const bar = new CoveyStatusBar();
    const item = created.statusBarItems[0];
    expect(item.visible).toBe(true);
    bar.update({ server: 'running', engine: { state: 'up' }, lastLatencyMs: 95 });
    expect(item.text).toBe('$(sparkle) Covey 95 ms');
    expect(item.command).toBe('covey.showUsage');
    expect(item.backgroundColor).toBeUndefined();
    bar.update({ engine: { state: 'down' } });
    expect(item.text).toContain('engine down');
    expect(item.backgroundColor).toBeDefined();
    bar.update({ server: 'failed' });
    expect(item.command).toBe('covey.showLog');
  });
});

describe('UsagePanel', () => {
  beforeEach(resetStub);

  it('renders the summary and re-asks when the period changes', async () => {
    const asked: string[] = [];
    const panel = new UsagePanel(async (since, token) => {
      expect(token).toBeDefined();
      asked.push(since);
      return { rows: [{ task: 'completion', calls: since === 'today' ? 2 : 9 }], total: { calls: 2 } };
    });
    await panel.show();
    const webview = created.webviewPanels[0].webview;
    expect(webview.html).toContain('<th scope="row">completion</th><td>2</td>');
    webview.post({ since: '7d' });
    await tick();
    expect(asked).toEqual(['today', '7d']);
    expect(webview.html).toContain('<td>9</td>');
    webview.post({ since: 'forever' }); // not a choice: ignored
    await tick();
    expect(asked).toHaveLength(2);
    await panel.show();
    expect(created.webviewPanels).toHaveLength(1);
    expect(created.webviewPanels[0].revealed).toBe(1);
  });

  it('shows the error when the server cannot answer', async () => {
    const panel = new UsagePanel(async () => {
      throw new Error('the Covey server is not running');
    });
    await panel.show();
    expect(created.webviewPanels[0].webview.html).toContain('Could not read usage: covey/usageSummary: the Covey server is not running');
  });

  it('says when the server is too old to answer', async () => {
    const panel = new UsagePanel(async () => {
      throw Object.assign(new Error('Method Not Found'), { code: -32601 });
    });
    await panel.show();
    expect(created.webviewPanels[0].webview.html).toContain('this Covey server does not answer covey/usageSummary');
  });
});
