// The status bar item: engine state, last latency, today's cost and savings.
import * as vscode from 'vscode';
import { renderStatus, StatusModel } from './statusModel';

export const SHOW_USAGE = 'covey.showUsage';
export const SHOW_LOG = 'covey.showLog';

export class CoveyStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private model: StatusModel = { server: 'starting' };

  constructor() {
    this.item = vscode.window.createStatusBarItem('covey.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'Covey';
    this.render();
    this.item.show();
  }

  get current(): StatusModel {
    return { ...this.model };
  }

  update(patch: Partial<StatusModel>): void {
    this.model = { ...this.model, ...patch };
    this.render();
  }

  private render(): void {
    const view = renderStatus(this.model);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.command = this.model.server === 'failed' ? SHOW_LOG : SHOW_USAGE;
    this.item.backgroundColor = view.warning
      ? new vscode.ThemeColor('statusBarItem.warningBackground')
      : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
