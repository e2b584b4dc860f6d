# Evaluates a Vagrantfile against a stand-in for Vagrant's configuration
# objects and prints what it defined as JSON, so a test can check the
# machines, addresses and provisioner inputs without Vagrant installed.
# Only the calls natsdeploy's Vagrantfile makes are stood in for.
require "json"

OUT = { "box" => nil, "machines" => {} }

class FakeProvider
  def initialize(m); @m = m; end
  def method_missing(name, *args); @m["provider." + name.to_s.chomp("=")] = args.first; end
  def respond_to_missing?(*); true; end
end

class FakeVM
  def initialize(m); @m = m; end
  def box=(v); OUT["box"] = v; end
  def hostname=(v); @m["hostname"] = v; end
  def define(name)
    m = { "networks" => [], "provisions" => [] }
    OUT["machines"][name] = m
    yield FakeConfig.new(m)
  end
  def network(kind, **opts); @m["networks"] << opts.merge("kind" => kind); end
  def provider(name); yield FakeProvider.new(@m); end
  def provision(kind, **opts); @m["provisions"] << opts.merge("kind" => kind); end
end

class FakeConfig
  attr_reader :vm
  def initialize(m); @vm = FakeVM.new(m); end
end

module Vagrant
  def self.configure(version)
    raise "config version #{version}" unless version == "2"
    yield FakeConfig.new({})
  end
end

load ARGV.fetch(0)
puts JSON.generate(OUT)
