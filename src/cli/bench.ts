import type { Command } from 'commander';

// Placeholder until this command lands.
export function register(program: Command): void {
  program.command('bench').action(() => {
    throw new Error('bench: not implemented yet');
  });
}
