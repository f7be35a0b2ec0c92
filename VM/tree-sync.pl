#!/usr/bin/perl
# SPDX-License-Identifier: GPL-2.0-only
#
# Keep a snapshot of a source tree in step with the tree, by content.
#
# Usage: tree-sync.pl SRC DST STATE < LIST
#
# LIST: the files of SRC to snapshot, relative paths separated by NUL
# (git ls-files -z).  A file of LIST is copied to DST only when its content
# (or its executable bit, or a symlink's target) differs from what DST holds,
# so the files that did not change keep their modification times and make
# rebuilds only what changed.  Files of DST that are no longer in LIST are
# deleted.  SRC is only read.
#
# STATE remembers, per file, SRC's size, times and inode at the last sync
# and the content's SHA-256: a file whose stat did not change is not read
# again (git's index works the same way).
#
# Without STATE, DST may hold a prefill: hard links to another tree's files
# (build.sh's seeded build, Debian's source).  A file of DST is then kept only
# when its content and mode are SRC's (so it keeps the other tree's time and
# its objects stay valid); any other is replaced, never written through the
# link, and a file of DST that LIST does not name is removed.
#
# stdout: the SHA-256 of the snapshot's content (paths, modes and hashes).
# stderr: one line, "N files, C copied, R removed".
use strict;
use warnings;
use Digest::SHA;
use File::Find qw(find);
use File::Path qw(make_path);
use Time::HiRes qw(lstat);

@ARGV == 3 or die "usage: tree-sync.pl SRC DST STATE < LIST\n";
my ($src, $dst, $state) = @ARGV;

my %old;
if (open(my $fh, '<', $state)) {
	local $/ = "\0";
	while (my $rec = <$fh>) {
		chomp $rec;
		my ($sha, $mode, $stat, $path) = split /\t/, $rec, 4;
		$old{$path} = [$sha, $mode, $stat];
	}
	close $fh;
}

my @list = do { local $/; my $all = <STDIN> // ''; grep { length } split /\0/, $all };
my %seen;
@list = sort grep { !$seen{$_}++ } @list;

my ($copied, $removed) = (0, 0);
my %new;

sub file_sha {
	my ($path) = @_;
	my $d = Digest::SHA->new(256);
	$d->addfile($path, 'b');
	return $d->hexdigest;
}

sub replace {	# writes DST/path with SRC/path's content, through a temporary file
	my ($path, $mode, $link) = @_;
	my $to = "$dst/$path";
	(my $dir = $to) =~ s{/[^/]*$}{};
	make_path($dir) unless -d $dir;
	my $tmp = "$to.tree-sync.$$";
	if (defined $link) {
		symlink($link, $tmp) or die "tree-sync: symlink $tmp: $!\n";
	} else {
		open(my $in, '<:raw', "$src/$path") or die "tree-sync: $src/$path: $!\n";
		open(my $out, '>:raw', $tmp) or die "tree-sync: $tmp: $!\n";
		my $buf;
		while (my $n = sysread($in, $buf, 1 << 20)) {
			print $out $buf or die "tree-sync: $tmp: $!\n";
		}
		close $out or die "tree-sync: $tmp: $!\n";
		close $in;
		chmod($mode eq 'x' ? 0755 : 0644, $tmp);
	}
	# A directory in the way (a file replaced a directory) is removed.
	system('rm', '-rf', '--', $to) if -d $to && !-l $to;
	rename($tmp, $to) or die "tree-sync: rename $tmp: $!\n";
	$copied++;
}

for my $path (@list) {
	die "tree-sync: file name with a tab or newline: $path\n" if $path =~ /[\t\n]/;
	my @st = lstat("$src/$path");
	next unless @st;	# tracked but deleted in the working tree
	my ($mode, $sha, $link);
	if (-l _) {
		$mode = 'l';
		$link = readlink("$src/$path");
		$sha = Digest::SHA::sha256_hex("link $link");
	} elsif (-f _) {
		$mode = ($st[2] & 0111) ? 'x' : '-';
	} else {
		next;		# a directory (submodule) or a special file
	}
	my $stat = join(',', $st[7], $st[9], $st[10], $st[1]);
	my $o = $old{$path};
	my $have = (-e "$dst/$path" || -l "$dst/$path");
	if ($mode ne 'l') {
		if ($o && $have && $o->[2] eq $stat && $o->[1] eq $mode) {
			$sha = $o->[0];
		} else {
			$sha = file_sha("$src/$path");
		}
	}
	my $same = $o && $have && $o->[0] eq $sha && $o->[1] eq $mode;
	if (!$same && !$o && $have && $mode ne 'l' && !-l "$dst/$path" && -f "$dst/$path") {
		# No state for it (a first sync over an old snapshot or a prefill):
		# compare contents and mode; a file that differs is replaced, never
		# changed in place (it may be a hard link to another tree's file).
		my $dmode = ((lstat("$dst/$path"))[2] & 0111) ? 'x' : '-';
		$same = $dmode eq $mode && file_sha("$dst/$path") eq $sha;
	}
	replace($path, $mode, $link) unless $same;
	$new{$path} = [$sha, $mode, $stat];
}

for my $path (sort keys %old) {
	next if $new{$path};
	if (unlink("$dst/$path")) {
		$removed++;
	}
}

# A first sync: what DST holds beyond LIST (a prefill's other files) goes.
if (!%old && -d $dst) {
	my @extra;
	find({ no_chdir => 1, wanted => sub {
		return if -d $_ && !-l $_;
		my $rel = substr($File::Find::name, length($dst) + 1);
		push @extra, $rel unless $new{$rel} || $rel =~ /\.tree-sync\.\d+$/;
	} }, $dst);
	for my $rel (@extra) {
		$removed++ if unlink("$dst/$rel");
	}
}

my $tmp = "$state.tmp.$$";
open(my $out, '>', $tmp) or die "tree-sync: $tmp: $!\n";
my $tree = Digest::SHA->new(256);
for my $path (@list) {
	my $n = $new{$path} or next;
	print $out join("\t", @$n, $path), "\0";
	$tree->add("$n->[1] $n->[0] $path\n");
}
close $out or die "tree-sync: $tmp: $!\n";
rename($tmp, $state) or die "tree-sync: rename $tmp: $!\n";

printf STDERR "%d files, %d copied, %d removed\n", scalar(keys %new), $copied, $removed;
print $tree->hexdigest, "\n";
