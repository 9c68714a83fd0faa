#!/usr/bin/perl
# Verify the DKIM signatures of the message on stdin with Mail::DKIM, asking only the DNS server
# at 127.0.0.1:<port> (argv[0]). Prints one line per signature: "<result> <algorithm> <selector>
# <detail>", then "overall <result>".
use strict;
use warnings;
use Mail::DKIM;
use Mail::DKIM::Verifier;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;

my $port = shift @ARGV or die "usage: dkim_verify.pl PORT < message\n";
my $resolver = Net::DNS::Resolver->new(
    config_file => '/dev/null',
    nameservers => ['127.0.0.1'],
    port        => $port,
    recurse     => 1,
    retry       => 1,
    tcp_timeout => 5,
    udp_timeout => 5,
);
$resolver->nameservers('127.0.0.1');
Mail::DKIM::DNS::resolver($resolver);

binmode STDIN;
my $dkim = Mail::DKIM::Verifier->new();
while (my $chunk = <STDIN>) {
    $chunk =~ s/\r?\n\z/\r\n/;    # Mail::DKIM wants CRLF
    $dkim->PRINT($chunk);
}
$dkim->CLOSE();
foreach my $sig ($dkim->signatures) {
    printf "%s %s %s %s\n", $sig->result, ($sig->algorithm // '-'), ($sig->selector // '-'),
        ($sig->result_detail // '');
}
printf "overall %s\n", $dkim->result;
print "version $Mail::DKIM::VERSION\n";
